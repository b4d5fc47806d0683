// Package statedir keeps the agent's small state files under its state
// directory (puller.Config.StateDir, default /var/lib/aptfleet): one JSON
// file per concern, each read and written whole.
//
// A write goes to a temporary file in the same directory, is fsynced, renamed
// over the old file and the directory fsynced, so a crash leaves either the
// old contents or the new, never a mix. A missing file means the host never
// wrote it (first boot). A file that exists but cannot be read or decoded is
// an error naming the file: it is never taken for "nothing seen", since that
// would forget exactly what the file is there to remember. The operator
// clears it (repairs or deletes the file).
package statedir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/aptfleet/aptfleet/puller"
)

// ErrCorrupt marks a state file that exists but does not decode.
var ErrCorrupt = errors.New("statedir: corrupt state file")

// File is one JSON state file holding a T.
type File[T any] struct {
	// Path is the file's path.
	Path string
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*\.json$`)

// Open returns the state file name (e.g. "index.json") in dir. The name is
// one path element ending in .json.
func Open[T any](dir, name string) (File[T], error) {
	if dir == "" {
		return File[T]{}, errors.New("statedir: empty state directory")
	}
	if !validName.MatchString(name) {
		return File[T]{}, fmt.Errorf("statedir: invalid state file name %q", name)
	}
	return File[T]{Path: filepath.Join(dir, name)}, nil
}

// Load reads the file. ok is false, with a zero v and no error, when the file
// does not exist. A file that cannot be read is an error naming it; one that
// does not decode as a T wraps ErrCorrupt.
func (f File[T]) Load() (v T, ok bool, err error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("state file %s: %w", f.Path, unwrapPath(err))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return v, false, fmt.Errorf("state file %s: %w: empty", f.Path, ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		var zero T
		return zero, false, fmt.Errorf("state file %s: %w: %v", f.Path, ErrCorrupt, err)
	}
	if dec.More() {
		var zero T
		return zero, false, fmt.Errorf("state file %s: %w: data after the JSON value", f.Path, ErrCorrupt)
	}
	return v, true, nil
}

// Store replaces the file's contents with v atomically, creating the
// directory if needed.
func (f File[T]) Store(v T) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("state file %s: encode: %w", f.Path, err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, unwrapPath(err))
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".tmp*")
	if err != nil {
		return fmt.Errorf("state file %s: %w", f.Path, unwrapPath(err))
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("state file %s: write: %w", f.Path, unwrapPath(err))
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("state file %s: %w", f.Path, unwrapPath(err))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("state file %s: fsync: %w", f.Path, unwrapPath(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file %s: %w", f.Path, unwrapPath(err))
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("state file %s: %w", f.Path, unwrapPath(err))
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync() // the rename itself survives a crash
		d.Close()
		if err != nil {
			return fmt.Errorf("state directory %s: fsync: %w", dir, unwrapPath(err))
		}
	}
	return nil
}

// locks serialises Update within the process; flock serialises processes
// (the agent and a `puller once` run side by side).
var locks sync.Map // path -> *sync.Mutex

// Update loads the file (the zero T when it is missing), lets fn change it
// and stores the result, holding an exclusive lock (an flock on a ".lock"
// file beside it) so concurrent updaters do not lose each other's changes.
// Nothing is written when fn returns an error or changed=false.
func (f File[T]) Update(fn func(v *T) (changed bool, err error)) error {
	mu, _ := locks.LoadOrStore(f.Path, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, unwrapPath(err))
	}
	lockPath := filepath.Join(dir, "."+filepath.Base(f.Path)+".lock")
	lf, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("state file %s: lock: %w", f.Path, unwrapPath(err))
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("state file %s: lock: %w", f.Path, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	v, _, err := f.Load()
	if err != nil {
		return err
	}
	changed, err := fn(&v)
	if err != nil || !changed {
		return err
	}
	return f.Store(v)
}

// unwrapPath drops the *fs.PathError's own path: the messages here name the
// state file already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// Dates is the index Date file (index.json): per "app/dist", the newest
// InRelease Date the host accepted. It implements puller.IndexDates.
type Dates struct {
	File File[map[string]time.Time]
}

// OpenDates returns the Dates kept in dir.
func OpenDates(dir string) (*Dates, error) {
	f, err := Open[map[string]time.Time](dir, "index.json")
	if err != nil {
		return nil, err
	}
	return &Dates{File: f}, nil
}

// Newest returns the newest Date recorded for key (zero when none), reading
// the file without writing or locking it. A corrupt file is an error naming it.
func (d *Dates) Newest(key string) (time.Time, error) {
	m, _, err := d.File.Load()
	if err != nil {
		return time.Time{}, err
	}
	return m[key], nil
}

// Advance records date for key unless the file holds a newer one, and
// returns the newest Date recorded. A corrupt file is an error, never an
// empty memory.
func (d *Dates) Advance(key string, date time.Time) (time.Time, error) {
	newest := date
	err := d.File.Update(func(m *map[string]time.Time) (bool, error) {
		old, ok := (*m)[key]
		if ok && !date.After(old) {
			newest = old
			return false, nil
		}
		if *m == nil {
			*m = map[string]time.Time{}
		}
		(*m)[key] = date.UTC()
		return true, nil
	})
	return newest, err
}

// Marks is the marks file (marks.json): per "app/env", the broken marks the
// host has seen, each with the epoch of the Redis data it was last seen in.
// It implements puller.MarkMemory.
type Marks struct {
	File File[map[string]map[string]puller.SeenMark]
}

var _ puller.MarkMemory = (*Marks)(nil)

// OpenMarks returns the Marks kept in dir.
func OpenMarks(dir string) (*Marks, error) {
	f, err := Open[map[string]map[string]puller.SeenMark](dir, "marks.json")
	if err != nil {
		return nil, err
	}
	return &Marks{File: f}, nil
}

// Marks returns the marks remembered for key (none when the file is
// missing). A corrupt file is an error, never an empty memory.
func (m *Marks) Marks(key string) (map[string]puller.SeenMark, error) {
	all, _, err := m.File.Load()
	if err != nil {
		return nil, err
	}
	return all[key], nil
}

// UpdateMarks implements puller.MarkMemory: fn gets key's marks (an empty
// map when none) under the file's lock; the file is rewritten when fn
// reports a change.
func (m *Marks) UpdateMarks(key string, fn func(marks map[string]puller.SeenMark) (bool, error)) error {
	return m.File.Update(func(all *map[string]map[string]puller.SeenMark) (bool, error) {
		marks := (*all)[key]
		if marks == nil {
			marks = map[string]puller.SeenMark{}
		}
		changed, err := fn(marks)
		if err != nil || !changed {
			return false, err
		}
		if *all == nil {
			*all = map[string]map[string]puller.SeenMark{}
		}
		if len(marks) == 0 {
			delete(*all, key)
		} else {
			(*all)[key] = marks
		}
		return true, nil
	})
}
