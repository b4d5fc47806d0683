// Package dir stores an apt repository in a local directory, the layout a
// plain HTTP server (or apt's file: method) serves as is.
//
// Every write goes to a temporary file in the same file system, is synced
// and renamed into place, so readers see the old object or the new one and
// never a partial one. Conditional writes take an exclusive flock(2) on a lock
// file for the check-and-rename, which makes them atomic with respect to
// every other writer, in this process or another. An object's ETag is the
// SHA-256 of its content.
package dir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/aptfleet/aptfleet/repo"
)

// Reserved names in the root: the lock file and the temporary directory.
// They are never listed and no key may use them.
const (
	lockName = ".aptfleet.lock"
	tempName = ".aptfleet.tmp"
)

// Store is a repository in a local directory.
type Store struct {
	root string
}

var _ repo.Store = (*Store)(nil)

// Open returns the store rooted at root, creating the directory if needed.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("repository directory %s: %w", root, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, tempName), 0o755); err != nil {
		return nil, fmt.Errorf("repository directory %s: %w", root, err)
	}
	return &Store{root: abs}, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

func (s *Store) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || strings.Contains(key, "//") ||
		strings.HasPrefix(key, ".aptfleet.") {
		return "", fmt.Errorf("invalid key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "." || part == ".." || part == "" {
			return "", fmt.Errorf("invalid key %q", key)
		}
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// etagOf hashes r.
func etagOf(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`, nil
}

// stat opens and describes the object at key; the caller closes f.
func (s *Store) open(key string) (*os.File, repo.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, repo.Object{}, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, repo.Object{}, fmt.Errorf("%s: %w", key, repo.ErrNotFound)
	}
	if err != nil {
		return nil, repo.Object{}, err
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		f.Close()
		return nil, repo.Object{}, fmt.Errorf("%s: %w", key, repo.ErrNotFound)
	}
	var etag string
	if err == nil {
		etag, err = etagOf(f)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, repo.Object{}, fmt.Errorf("read %s: %w", key, err)
	}
	return f, repo.Object{Key: key, Size: fi.Size(), ETag: etag, Modified: fi.ModTime()}, nil
}

// Get implements repo.Store.
func (s *Store) Get(ctx context.Context, key, ifNoneMatch string) (io.ReadCloser, repo.Object, error) {
	f, o, err := s.open(key)
	if err != nil {
		return nil, repo.Object{}, err
	}
	if ifNoneMatch != "" && ifNoneMatch == o.ETag {
		f.Close()
		return nil, o, fmt.Errorf("%s: %w", key, repo.ErrNotModified)
	}
	return f, o, nil
}

// Head implements repo.Store.
func (s *Store) Head(ctx context.Context, key string) (repo.Object, error) {
	f, o, err := s.open(key)
	if err != nil {
		return repo.Object{}, err
	}
	f.Close()
	return o, nil
}

// Put implements repo.Store.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64, opts repo.PutOptions) (repo.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return repo.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return repo.Object{}, err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, tempName), "put-*")
	if err != nil {
		return repo.Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("body has %d bytes, want %d", n, size)
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return repo.Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return repo.Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	unlock, err := s.lock()
	if err != nil {
		return repo.Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	defer unlock()
	if opts.IfNoneMatch || opts.IfMatch != "" {
		cur, err := s.Head(ctx, key)
		switch {
		case errors.Is(err, repo.ErrNotFound):
			if opts.IfMatch != "" {
				return repo.Object{}, fmt.Errorf("put %s: %w (object is missing)", key, repo.ErrPrecondition)
			}
		case err != nil:
			return repo.Object{}, fmt.Errorf("put %s: %w", key, err)
		case opts.IfNoneMatch:
			return repo.Object{}, fmt.Errorf("put %s: %w (object exists)", key, repo.ErrPrecondition)
		case cur.ETag != opts.IfMatch:
			return repo.Object{}, fmt.Errorf("put %s: %w (object changed)", key, repo.ErrPrecondition)
		}
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return repo.Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		d.Sync()
		d.Close()
	}
	fi, err := os.Stat(p)
	if err != nil {
		return repo.Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	return repo.Object{Key: key, Size: n, ETag: etag, Modified: fi.ModTime()}, nil
}

// lock takes the store's exclusive lock; every check-and-rename runs under
// it. flock locks belong to the open file description, so goroutines of one
// process exclude each other as separate processes do.
func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.root, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// Delete implements repo.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	defer unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// Remove directories left empty, up to the root.
	for d := filepath.Dir(p); d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}

// List implements repo.Store. Keys come in byte order, as S3 lists them.
func (s *Store) List(ctx context.Context, prefix string, fn func(repo.Object) error) error {
	// Walk from the deepest directory the prefix names.
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	var keys []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if p != s.root && strings.HasPrefix(key, ".aptfleet.") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(key, prefix) && !strings.HasPrefix(key, ".aptfleet.") {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(s.root, filepath.FromSlash(key))
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while listing
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		etag, err := etagOf(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if err := fn(repo.Object{Key: key, Size: fi.Size(), ETag: etag, Modified: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}
