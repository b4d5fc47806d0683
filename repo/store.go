package repo

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors a Store returns; callers branch on them with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("repo: object not found")
	// ErrPrecondition: a conditional write lost: the key already exists
	// (PutOptions.IfNoneMatch) or its ETag is no longer PutOptions.IfMatch
	// (including the key having disappeared).
	ErrPrecondition = errors.New("repo: precondition failed")
	// ErrNotModified: Get was called with the key's current ETag.
	ErrNotModified = errors.New("repo: not modified")
	// ErrUnknownOutcome: a write may or may not have been applied: the
	// request went out and its answer was lost, or was a server error. A
	// change reads the dist again to learn which.
	ErrUnknownOutcome = errors.New("repo: outcome unknown")
)

// Object describes one stored object.
type Object struct {
	Key      string
	Size     int64
	ETag     string // opaque; compare only for equality
	Modified time.Time
}

// PutOptions makes a write conditional. The zero value writes unconditionally.
type PutOptions struct {
	// IfNoneMatch creates the object only if the key does not exist yet
	// (S3 If-None-Match: *).
	IfNoneMatch bool
	// IfMatch replaces the object only if its current ETag equals this value
	// (S3 If-Match).
	IfMatch string
	// ContentType is stored with the object when the backend supports it.
	ContentType string
}

// Store is where a repository lives: an S3 bucket prefix or a local directory.
// Keys are slash-separated paths relative to the repository root
// ("dists/staging/InRelease", "pool/main/h/hello/hello_1.0-1_amd64.deb").
//
// Conditional writes must be atomic with respect to every other writer of the
// same store, including other processes: that is what makes publishing safe
// without a lock or a database.
type Store interface {
	// Get opens the object at key. If ifNoneMatch is not empty and equals the
	// object's current ETag, Get returns ErrNotModified and no body.
	Get(ctx context.Context, key, ifNoneMatch string) (io.ReadCloser, Object, error)
	// Head returns the object's metadata without its body.
	Head(ctx context.Context, key string) (Object, error)
	// Put writes size bytes from body to key under opts' conditions. A body
	// that implements io.Seeker may be rewound for retries.
	Put(ctx context.Context, key string, body io.Reader, size int64, opts PutOptions) (Object, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string, fn func(Object) error) error
}
