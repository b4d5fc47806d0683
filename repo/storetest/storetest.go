// Package storetest is the conformance suite every repo.Store implementation
// runs: the same behaviour (sentinel errors, conditional writes, listing order,
// atomicity under concurrent writers) is demanded of the S3 store and the
// local-directory store alike.
//
// Use it from the implementation's own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) repo.Store { return newEmptyStore(t) })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/repo"
)

// Writers is the number of concurrent conditional writers in each round of
// the concurrency tests.
const Writers = 32

// Rounds is how many rounds of concurrent conditional writes run.
const Rounds = 8

// Run runs the whole suite. newStore must return an empty store that no other
// call shares (a fresh directory, a fresh bucket prefix); it registers its own
// cleanup on t.
func Run(t *testing.T, newStore func(t *testing.T) repo.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s repo.Store)
	}{
		{"MissingKey", testMissingKey},
		{"PutGetHead", testPutGetHead},
		{"EmptyObject", testEmptyObject},
		{"DebianFileNames", testDebianFileNames},
		{"UnseekableBody", testUnseekableBody},
		{"Overwrite", testOverwrite},
		{"GetNotModified", testGetNotModified},
		{"IfNoneMatch", testIfNoneMatch},
		{"IfMatch", testIfMatch},
		{"IfMatchMissingKey", testIfMatchMissingKey},
		{"Delete", testDelete},
		{"ListOrderAndPrefix", testList},
		{"ListCallbackError", testListCallbackError},
		{"ListPages", testListPages},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentReplace", testConcurrentReplace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// put writes data unconditionally and fails the test on error.
func put(t *testing.T, s repo.Store, key, data string) repo.Object {
	t.Helper()
	o, err := s.Put(ctx(t), key, strings.NewReader(data), int64(len(data)), repo.PutOptions{})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if o.ETag == "" {
		t.Fatalf("Put(%q) returned an empty ETag", key)
	}
	return o
}

// content reads key whole and fails the test on error.
func content(t *testing.T, s repo.Store, key string) (string, repo.Object) {
	t.Helper()
	rc, o, err := s.Get(ctx(t), key, "")
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return string(b), o
}

func head(t *testing.T, s repo.Store, key string) repo.Object {
	t.Helper()
	o, err := s.Head(ctx(t), key)
	if err != nil {
		t.Fatalf("Head(%q): %v", key, err)
	}
	return o
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func testMissingKey(t *testing.T, s repo.Store) {
	rc, _, err := s.Get(ctx(t), "dists/staging/InRelease", "")
	if rc != nil {
		rc.Close()
		t.Errorf("Get of a missing key returned a body")
	}
	wantErr(t, "Get missing", err, repo.ErrNotFound)
	_, err = s.Head(ctx(t), "dists/staging/InRelease")
	wantErr(t, "Head missing", err, repo.ErrNotFound)
	_, _, err = s.Get(ctx(t), "dists/staging/InRelease", `"0123456789abcdef"`)
	wantErr(t, "Get missing with If-None-Match", err, repo.ErrNotFound)
}

func testPutGetHead(t *testing.T, s repo.Store) {
	const key = "dists/staging/main/binary-amd64/Packages"
	data := "Package: hello\nVersion: 1.0-1\n"
	before := time.Now().Add(-time.Hour)
	o, err := s.Put(ctx(t), key, strings.NewReader(data), int64(len(data)), repo.PutOptions{ContentType: "text/plain"})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if o.Key != key || o.Size != int64(len(data)) || o.ETag == "" {
		t.Errorf("Put returned %+v, want key %q, size %d and an ETag", o, key, len(data))
	}
	got, g := content(t, s, key)
	if got != data {
		t.Errorf("Get returned %q, want %q", got, data)
	}
	if g.Key != key || g.Size != int64(len(data)) || g.ETag != o.ETag {
		t.Errorf("Get returned %+v, want key %q, size %d, ETag %q", g, key, len(data), o.ETag)
	}
	h := head(t, s, key)
	if h.Key != key || h.Size != int64(len(data)) || h.ETag != o.ETag {
		t.Errorf("Head returned %+v, want key %q, size %d, ETag %q", h, key, len(data), o.ETag)
	}
	if h.Modified.Before(before) || h.Modified.After(time.Now().Add(time.Hour)) {
		t.Errorf("Head Modified = %v, want about now", h.Modified)
	}
}

func testEmptyObject(t *testing.T, s repo.Store) {
	o := put(t, s, "dists/staging/main/binary-amd64/Packages", "")
	if o.Size != 0 {
		t.Errorf("Put size = %d, want 0", o.Size)
	}
	got, g := content(t, s, "dists/staging/main/binary-amd64/Packages")
	if got != "" || g.Size != 0 {
		t.Errorf("Get = %q size %d, want empty", got, g.Size)
	}
}

// Pool file names carry the characters Debian versions allow: + ~ . - and
// digits; object stores are known to mangle '+' in URLs.
func testDebianFileNames(t *testing.T, s repo.Store) {
	keys := []string{
		"pool/main/h/hello/hello_1.0+git20240101~rc1-1_amd64.deb",
		"pool/main/libf/libfoo++/libfoo++_2.0~beta+dfsg-1+b1_amd64.deb",
	}
	for i, key := range keys {
		data := fmt.Sprintf("deb %d", i)
		put(t, s, key, data)
		if got, _ := content(t, s, key); got != data {
			t.Errorf("Get(%q) = %q, want %q", key, got, data)
		}
		head(t, s, key)
	}
	var listed []string
	if err := s.List(ctx(t), "pool/", func(o repo.Object) error {
		listed = append(listed, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(listed, want) {
		t.Errorf("List = %q, want %q", listed, want)
	}
	for _, key := range keys {
		if err := s.Delete(ctx(t), key); err != nil {
			t.Errorf("Delete(%q): %v", key, err)
		}
		_, err := s.Head(ctx(t), key)
		wantErr(t, "Head after Delete "+key, err, repo.ErrNotFound)
	}
}

// onlyReader hides every method but Read (no Seek, no WriterTo, no Len).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func testUnseekableBody(t *testing.T, s repo.Store) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	const key = "pool/main/b/big/big_1.0_amd64.deb"
	o, err := s.Put(ctx(t), key, onlyReader{bytes.NewReader(data)}, int64(len(data)), repo.PutOptions{IfNoneMatch: true})
	if err != nil {
		t.Fatalf("Put of an unseekable body: %v", err)
	}
	if o.Size != int64(len(data)) {
		t.Errorf("Put size = %d, want %d", o.Size, len(data))
	}
	got, _ := content(t, s, key)
	if got != string(data) {
		t.Errorf("Get returned %d bytes that differ from the %d written", len(got), len(data))
	}
}

func testOverwrite(t *testing.T, s repo.Store) {
	const key = "dists/staging/Release"
	a := put(t, s, key, "first")
	b := put(t, s, key, "second, longer")
	if a.ETag == b.ETag {
		t.Errorf("ETag unchanged (%q) after writing different content", a.ETag)
	}
	if got, g := content(t, s, key); got != "second, longer" || g.ETag != b.ETag {
		t.Errorf("Get = %q ETag %q, want %q ETag %q", got, g.ETag, "second, longer", b.ETag)
	}
}

func testGetNotModified(t *testing.T, s repo.Store) {
	const key = "dists/staging/InRelease"
	a := put(t, s, key, "signed one")
	rc, o, err := s.Get(ctx(t), key, a.ETag)
	if rc != nil {
		rc.Close()
		t.Errorf("Get with the current ETag returned a body")
	}
	wantErr(t, "Get with current ETag", err, repo.ErrNotModified)

	b := put(t, s, key, "signed two")
	rc, o, err = s.Get(ctx(t), key, a.ETag)
	if err != nil {
		t.Fatalf("Get with a stale ETag: %v", err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "signed two" || o.ETag != b.ETag {
		t.Errorf("Get with a stale ETag = %q ETag %q, want %q ETag %q", got, o.ETag, "signed two", b.ETag)
	}
}

func testIfNoneMatch(t *testing.T, s repo.Store) {
	const key = "pool/main/h/hello/hello_1.0-1_amd64.deb"
	create := func(data string) (repo.Object, error) {
		return s.Put(ctx(t), key, strings.NewReader(data), int64(len(data)), repo.PutOptions{IfNoneMatch: true})
	}
	o, err := create("original")
	if err != nil {
		t.Fatalf("create-only Put of a new key: %v", err)
	}
	_, err = create("other bytes")
	wantErr(t, "create-only Put of an existing key", err, repo.ErrPrecondition)
	_, err = create("original")
	wantErr(t, "create-only Put of an existing key, same bytes", err, repo.ErrPrecondition)
	if got, g := content(t, s, key); got != "original" || g.ETag != o.ETag {
		t.Errorf("after refused creates: %q ETag %q, want %q ETag %q", got, g.ETag, "original", o.ETag)
	}
	// Deleted keys can be created again.
	if err := s.Delete(ctx(t), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := create("again"); err != nil {
		t.Fatalf("create-only Put after Delete: %v", err)
	}
}

func testIfMatch(t *testing.T, s repo.Store) {
	const key = "dists/staging/InRelease"
	replace := func(data, etag string) (repo.Object, error) {
		return s.Put(ctx(t), key, strings.NewReader(data), int64(len(data)), repo.PutOptions{IfMatch: etag})
	}
	a := put(t, s, key, "generation 1")
	b, err := replace("generation 2", a.ETag)
	if err != nil {
		t.Fatalf("replace-only Put with the current ETag: %v", err)
	}
	if b.ETag == a.ETag {
		t.Errorf("ETag unchanged after a replace with other content")
	}
	_, err = replace("generation 3 (stale)", a.ETag)
	wantErr(t, "replace-only Put with a stale ETag", err, repo.ErrPrecondition)
	if got, g := content(t, s, key); got != "generation 2" || g.ETag != b.ETag {
		t.Errorf("after a refused replace: %q ETag %q, want %q ETag %q", got, g.ETag, "generation 2", b.ETag)
	}
	if _, err := replace("generation 3", b.ETag); err != nil {
		t.Fatalf("replace-only Put with the new ETag: %v", err)
	}
}

func testIfMatchMissingKey(t *testing.T, s repo.Store) {
	const key = "dists/production/InRelease"
	a := put(t, s, "dists/staging/InRelease", "x")
	_, err := s.Put(ctx(t), key, strings.NewReader("y"), 1, repo.PutOptions{IfMatch: a.ETag})
	wantErr(t, "replace-only Put of a missing key", err, repo.ErrPrecondition)
	_, err = s.Head(ctx(t), key)
	wantErr(t, "Head after a refused replace of a missing key", err, repo.ErrNotFound)

	// A key that disappeared since its ETag was read.
	if err := s.Delete(ctx(t), "dists/staging/InRelease"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = s.Put(ctx(t), "dists/staging/InRelease", strings.NewReader("z"), 1, repo.PutOptions{IfMatch: a.ETag})
	wantErr(t, "replace-only Put of a deleted key", err, repo.ErrPrecondition)
}

func testDelete(t *testing.T, s repo.Store) {
	put(t, s, "dists/staging/Release", "r")
	put(t, s, "dists/staging/Release.gpg", "g")
	if err := s.Delete(ctx(t), "dists/staging/Release"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Head(ctx(t), "dists/staging/Release")
	wantErr(t, "Head after Delete", err, repo.ErrNotFound)
	_, _, err = s.Get(ctx(t), "dists/staging/Release", "")
	wantErr(t, "Get after Delete", err, repo.ErrNotFound)
	if err := s.Delete(ctx(t), "dists/staging/Release"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if err := s.Delete(ctx(t), "never/existed"); err != nil {
		t.Errorf("Delete of a never-written key: %v", err)
	}
	if got, _ := content(t, s, "dists/staging/Release.gpg"); got != "g" {
		t.Errorf("Delete touched a sibling: %q", got)
	}
}

func testList(t *testing.T, s repo.Store) {
	keys := []string{
		"dists/staging/InRelease",
		"dists/staging/main/binary-amd64/Packages",
		"dists/staging/main/binary-amd64/Packages.gz",
		"dists/staging/main/binary-amd64/by-hash/SHA256/00ff",
		"dists/staging-old/Release",
		"dists/production/InRelease",
		"pool/main/h/hello/hello_1.0-1_amd64.deb",
		"pool/main/h/hello/hello_1.0-10_amd64.deb",
		"pool/main/h/hello/hello_1.0-2_amd64.deb",
		"pool/main/h/hello-doc/hello-doc_1.0_all.deb",
		"pool/main/libh/libhello/libhello_1.0_amd64.deb",
		"z",
	}
	etags := map[string]repo.Object{}
	// Write in a scrambled order so an insertion-ordered store fails.
	for i := range keys {
		k := keys[(i*5)%len(keys)]
		etags[k] = put(t, s, k, "content of "+k)
	}
	if len(etags) != len(keys) {
		t.Fatalf("test bug: scramble skipped keys")
	}
	list := func(prefix string) []repo.Object {
		t.Helper()
		var got []repo.Object
		if err := s.List(ctx(t), prefix, func(o repo.Object) error {
			got = append(got, o)
			return nil
		}); err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		return got
	}
	tests := []struct {
		name   string
		prefix string
	}{
		{"everything", ""},
		{"directory", "dists/staging/"},
		{"partial name", "dists/staging"},
		{"deep", "dists/staging/main/binary-amd64/by-hash/"},
		{"file name prefix", "pool/main/h/hello/hello_1.0-1"},
		{"exact key", "z"},
		{"nothing", "nothing/here/"},
		{"pool", "pool/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for _, k := range keys {
				if strings.HasPrefix(k, tt.prefix) {
					want = append(want, k)
				}
			}
			slices.Sort(want)
			got := list(tt.prefix)
			var gotKeys []string
			for _, o := range got {
				gotKeys = append(gotKeys, o.Key)
				w := etags[o.Key]
				if o.Size != int64(len("content of "+o.Key)) {
					t.Errorf("List %q: size %d, want %d", o.Key, o.Size, len("content of "+o.Key))
				}
				if o.ETag != w.ETag {
					t.Errorf("List %q: ETag %q, Put returned %q", o.Key, o.ETag, w.ETag)
				}
			}
			if !slices.Equal(gotKeys, want) {
				t.Errorf("List(%q) =\n  %q\nwant\n  %q", tt.prefix, gotKeys, want)
			}
		})
	}
}

func testListCallbackError(t *testing.T, s repo.Store) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("pool/%d", i), "x")
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.List(ctx(t), "pool/", func(repo.Object) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v, want the callback's error", err)
	}
	if calls != 2 {
		t.Errorf("List called fn %d times after it failed on call 2", calls)
	}
}

// ListKeys is more keys than S3 returns in one ListObjectsV2 page (1,000):
// a store that does not follow continuation tokens drops the rest.
const ListKeys = 1050

func testListPages(t *testing.T, s repo.Store) {
	key := func(i int) string { return fmt.Sprintf("pool/main/p/pkg/pkg_1.0.%04d_amd64.deb", i) }
	c := ctx(t)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := s.Put(c, key(i), strings.NewReader("x"), 1, repo.PutOptions{}); err != nil {
					t.Errorf("Put(%q): %v", key(i), err)
				}
			}
		}()
	}
	for i := range ListKeys {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		return
	}
	tests := []struct {
		prefix     string
		first, end int // keys first..end-1 are listed
	}{
		{"pool/", 0, ListKeys},
		{"pool/main/p/pkg/pkg_1.0.10", 1000, ListKeys},
		{"pool/main/p/pkg/pkg_1.0.09", 900, 1000},
	}
	for _, tt := range tests {
		i := tt.first
		err := s.List(c, tt.prefix, func(o repo.Object) error {
			if i >= tt.end || o.Key != key(i) {
				return fmt.Errorf("listed %q at position %d, want %q", o.Key, i-tt.first, key(min(i, tt.end-1)))
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatalf("List(%q): %v", tt.prefix, err)
		}
		if i != tt.end {
			t.Errorf("List(%q) returned %d keys, want %d", tt.prefix, i-tt.first, tt.end-tt.first)
		}
	}
}

// race runs fn from Writers goroutines released at once and returns their
// results.
func race(fn func(i int) (repo.Object, error)) ([]repo.Object, []error) {
	objs := make([]repo.Object, Writers)
	errs := make([]error, Writers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range Writers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			objs[i], errs[i] = fn(i)
		}()
	}
	start.Done()
	done.Wait()
	return objs, errs
}

// winner checks that exactly one writer succeeded and every other one got
// ErrPrecondition, and returns the winner's index.
func winner(t *testing.T, round int, errs []error) int {
	t.Helper()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("round %d: writers %d and %d both won", round, won, i)
		case err == nil:
			won = i
		case !errors.Is(err, repo.ErrPrecondition):
			t.Fatalf("round %d: writer %d: got %v, want success or %v", round, i, err, repo.ErrPrecondition)
		}
	}
	if won < 0 {
		t.Fatalf("round %d: no writer won", round)
	}
	return won
}

func testConcurrentCreate(t *testing.T, s repo.Store) {
	for round := range Rounds {
		key := fmt.Sprintf("pool/main/h/hello/hello_1.%d-1_amd64.deb", round)
		objs, errs := race(func(i int) (repo.Object, error) {
			data := fmt.Sprintf("round %d writer %d", round, i)
			return s.Put(ctx(t), key, strings.NewReader(data), int64(len(data)), repo.PutOptions{IfNoneMatch: true})
		})
		w := winner(t, round, errs)
		got, g := content(t, s, key)
		if want := fmt.Sprintf("round %d writer %d", round, w); got != want || g.ETag != objs[w].ETag {
			t.Fatalf("round %d: stored %q ETag %q, want the winner's %q ETag %q", round, got, g.ETag, want, objs[w].ETag)
		}
	}
}

func testConcurrentReplace(t *testing.T, s repo.Store) {
	const key = "dists/staging/InRelease"
	cur := put(t, s, key, "generation 0")
	for round := range Rounds {
		objs, errs := race(func(i int) (repo.Object, error) {
			// Same length for everyone, different bytes.
			data := fmt.Sprintf("generation %d by writer %02d", round+1, i)
			return s.Put(ctx(t), key, strings.NewReader(data), int64(len(data)), repo.PutOptions{IfMatch: cur.ETag})
		})
		w := winner(t, round, errs)
		got, g := content(t, s, key)
		if want := fmt.Sprintf("generation %d by writer %02d", round+1, w); got != want || g.ETag != objs[w].ETag {
			t.Fatalf("round %d: stored %q ETag %q, want the winner's %q ETag %q", round, got, g.ETag, want, objs[w].ETag)
		}
		cur = objs[w]
	}
}
