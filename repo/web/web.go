// Package web reads a repository served over HTTP(S) by any web server
// (nginx, CloudFront in front of a bucket, a plain file server): what the
// agent needs to follow a dist. It is read-only; writes and listings are
// refused, so the repository commands that change or list a repository
// still need its s3:// or directory address.
//
// The agent's idle tick stays one conditional request: Get sends the
// server's ETag back as If-None-Match, or, from a server that sends no
// ETag (Go's http.FileServer), its Last-Modified as If-Modified-Since. A
// server with neither is fetched in full every tick, and so is an object
// changed less than two seconds before it was served (see object).
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/repo"
)

var _ repo.Store = (*Store)(nil)

// ErrReadOnly: a write or a listing was asked of a repository read over HTTP.
var ErrReadOnly = errors.New("web: a repository read over http(s) is read-only and cannot be listed")

// lastModified prefixes the ETag Store makes from a Last-Modified date when
// the server sends no ETag of its own.
const lastModified = "last-modified:"

// Store reads a repository below a base URL.
type Store struct {
	base   string // with a trailing slash
	client *http.Client
}

// New returns a Store for the repository at base (http:// or https://).
// client nil means http.DefaultClient.
func New(base string, client *http.Client) (*Store, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("web: %q is not an http(s)://HOST/PATH URL", base)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &Store{base: strings.TrimRight(base, "/") + "/", client: client}, nil
}

func (s *Store) url(key string) string { return s.base + key }

// Get fetches key; with ifNoneMatch (an ETag this Store returned) it asks
// conditionally and returns repo.ErrNotModified on 304.
func (s *Store) Get(ctx context.Context, key, ifNoneMatch string) (io.ReadCloser, repo.Object, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(key), nil)
	if err != nil {
		return nil, repo.Object{}, err
	}
	if lm, ok := strings.CutPrefix(ifNoneMatch, lastModified); ok {
		req.Header.Set("If-Modified-Since", lm)
	} else if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, repo.Object{}, fmt.Errorf("get %s: %w", s.url(key), err)
	}
	if err := status(resp, key); err != nil {
		resp.Body.Close()
		return nil, repo.Object{}, err
	}
	return resp.Body, object(key, resp), nil
}

// Head returns key's size, ETag and date.
func (s *Store) Head(ctx context.Context, key string) (repo.Object, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.url(key), nil)
	if err != nil {
		return repo.Object{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return repo.Object{}, fmt.Errorf("head %s: %w", s.url(key), err)
	}
	resp.Body.Close()
	if err := status(resp, key); err != nil {
		return repo.Object{}, err
	}
	return object(key, resp), nil
}

// Put is refused: the repository is read-only here.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64, opts repo.PutOptions) (repo.Object, error) {
	return repo.Object{}, fmt.Errorf("put %s: %w", key, ErrReadOnly)
}

// Delete is refused: the repository is read-only here.
func (s *Store) Delete(ctx context.Context, key string) error {
	return fmt.Errorf("delete %s: %w", key, ErrReadOnly)
}

// List is refused: a web server gives no listing to rely on.
func (s *Store) List(ctx context.Context, prefix string, fn func(repo.Object) error) error {
	return fmt.Errorf("list %s: %w", prefix, ErrReadOnly)
}

// status maps a response's status to the Store's errors.
func status(resp *http.Response, key string) error {
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotModified:
		return repo.ErrNotModified
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%w: %s", repo.ErrNotFound, key)
	}
	return fmt.Errorf("%s %s: HTTP %s", resp.Request.Method, resp.Request.URL, resp.Status)
}

// object describes the response's object: the server's ETag, else one made
// from Last-Modified, else none (the next Get is then a full one).
//
// Last-Modified has one-second resolution, and so has the ETag of servers
// that build it from the file's time and size (nginx): a file rewritten
// within the second it was served at, with the same size, would still
// answer 304. So an object whose Last-Modified is less than two seconds
// before the response's Date gets no ETag, and the next Get fetches it in
// full (what HTTP caches do with a date that recent).
func object(key string, resp *http.Response) repo.Object {
	o := repo.Object{Key: key, Size: resp.ContentLength, ETag: resp.Header.Get("ETag")}
	lm := resp.Header.Get("Last-Modified")
	t, err := http.ParseTime(lm)
	if lm == "" || err != nil {
		return o
	}
	o.Modified = t
	if date, err := http.ParseTime(resp.Header.Get("Date")); err != nil || date.Sub(t) < 2*time.Second {
		o.ETag = ""
		return o
	}
	if o.ETag == "" {
		o.ETag = lastModified + lm
	}
	return o
}
