package storetest_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/storetest"
)

// memStore is the smallest correct repo.Store, written only to check the
// suite itself: a correct store passes and each broken variant fails. The real
// stores (repo/s3, repo/dir) run the suite in their own packages.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	// Deliberate defects, each of which the suite must catch.
	racyConditional bool // checks the condition and writes under separate locks
	ignoreIfMatch   bool // treats IfMatch as an unconditional write
	unsortedList    bool // lists in reverse order
	onePage         bool // lists at most 1,000 keys, like one S3 page
}

var _ repo.Store = (*memStore)(nil)

func etag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func (m *memStore) object(key string, b []byte) repo.Object {
	return repo.Object{Key: key, Size: int64(len(b)), ETag: etag(b), Modified: time.Now()}
}

func (m *memStore) Get(_ context.Context, key, ifNoneMatch string) (io.ReadCloser, repo.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[key]
	if !ok {
		return nil, repo.Object{}, fmt.Errorf("get %s: %w", key, repo.ErrNotFound)
	}
	o := m.object(key, b)
	if ifNoneMatch != "" && ifNoneMatch == o.ETag {
		return nil, o, fmt.Errorf("get %s: %w", key, repo.ErrNotModified)
	}
	return io.NopCloser(bytes.NewReader(b)), o, nil
}

func (m *memStore) Head(ctx context.Context, key string) (repo.Object, error) {
	rc, o, err := m.Get(ctx, key, "")
	if err == nil {
		rc.Close()
	}
	return o, err
}

func (m *memStore) check(key string, opts repo.PutOptions) error {
	cur, exists := m.objects[key]
	switch {
	case opts.IfNoneMatch && exists:
		return fmt.Errorf("put %s: %w", key, repo.ErrPrecondition)
	case opts.IfMatch != "" && !m.ignoreIfMatch && (!exists || etag(cur) != opts.IfMatch):
		return fmt.Errorf("put %s: %w", key, repo.ErrPrecondition)
	}
	return nil
}

func (m *memStore) Put(_ context.Context, key string, body io.Reader, size int64, opts repo.PutOptions) (repo.Object, error) {
	b, err := io.ReadAll(io.LimitReader(body, size))
	if err != nil {
		return repo.Object{}, err
	}
	m.mu.Lock()
	err = m.check(key, opts)
	if m.racyConditional {
		m.mu.Unlock()
		time.Sleep(time.Millisecond)
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	if err != nil {
		return repo.Object{}, err
	}
	m.objects[key] = b
	return m.object(key, b), nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

func (m *memStore) List(_ context.Context, prefix string, fn func(repo.Object) error) error {
	m.mu.Lock()
	var objs []repo.Object
	for k, b := range m.objects {
		if strings.HasPrefix(k, prefix) {
			objs = append(objs, m.object(k, b))
		}
	}
	m.mu.Unlock()
	sort.Slice(objs, func(i, j int) bool { return (objs[i].Key < objs[j].Key) != m.unsortedList })
	if m.onePage && len(objs) > 1000 {
		objs = objs[:1000]
	}
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func TestSuitePassesCorrectStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) repo.Store {
		return &memStore{objects: map[string][]byte{}}
	})
}

// defects are deliberately broken stores the suite must reject, with the
// subtest that must catch each.
var defects = map[string]struct {
	store   func() *memStore
	subtest string
}{
	"racy-replace": {func() *memStore { return &memStore{racyConditional: true} }, "ConcurrentReplace"},
	"racy-create":  {func() *memStore { return &memStore{racyConditional: true} }, "ConcurrentCreate"},
	"ifmatch":      {func() *memStore { return &memStore{ignoreIfMatch: true} }, "IfMatch"},
	"ifmatch-gone": {func() *memStore { return &memStore{ignoreIfMatch: true} }, "IfMatchMissingKey"},
	"unsorted":     {func() *memStore { return &memStore{unsortedList: true} }, "ListOrderAndPrefix"},
	"one-page":     {func() *memStore { return &memStore{onePage: true} }, "ListPages"},
}

// TestSuiteCatchesDefects re-runs this test binary once per defect (through
// TestDefectiveStore) and expects the suite to fail each time.
func TestSuiteCatchesDefects(t *testing.T) {
	for name, d := range defects {
		t.Run(name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"-test.run", "^TestDefectiveStore$/^"+d.subtest+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), "STORETEST_DEFECT="+name)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("suite passed a store with defect %s (want subtest %s to fail): %v\n%s", name, d.subtest, err, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestDefectiveStore/"+d.subtest) {
				t.Fatalf("subtest %s did not fail for defect %s:\n%s", d.subtest, name, out)
			}
		})
	}
}

// TestDefectiveStore is the child half of TestSuiteCatchesDefects; run
// directly it does nothing.
func TestDefectiveStore(t *testing.T) {
	d, ok := defects[os.Getenv("STORETEST_DEFECT")]
	if !ok {
		return
	}
	storetest.Run(t, func(*testing.T) repo.Store {
		s := d.store()
		s.objects = map[string][]byte{}
		return s
	})
}
