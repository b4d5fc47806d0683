package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// counts is what one publish cost at the server.
type counts struct {
	Requests int            // every request
	ByKind   map[string]int // GET, HEAD, PUT, DELETE, POST, LIST
	Uploaded int64          // request body bytes (PUT, POST)
	Received int64          // response body bytes
}

func (c counts) kinds() string {
	var parts []string
	for _, k := range []string{"LIST", "GET", "HEAD", "PUT", "POST", "DELETE"} {
		if n := c.ByKind[k]; n > 0 {
			parts = append(parts, k+" "+itoa(n))
		}
	}
	return strings.Join(parts, ", ")
}

// server is gofakes3 on loopback, with every request counted.
type server struct {
	URL string
	mu  sync.Mutex
	c   counts
	ts  *httptest.Server
}

func newServer(buckets ...string) (*server, error) {
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			return nil, err
		}
	}
	s := &server{}
	s.reset()
	h := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	s.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := &countingReader{r: r.Body}
		r.Body = body
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.c.Requests++
		s.c.ByKind[kind(r)]++
		s.c.Uploaded += body.n
		s.c.Received += cw.n
	}))
	s.URL = s.ts.URL
	return s, nil
}

// kind classifies a path-style request: a GET of a bucket (not an object) is
// a listing.
func kind(r *http.Request) string {
	path := strings.Trim(r.URL.Path, "/")
	if r.Method == http.MethodGet && !strings.Contains(path, "/") {
		return "LIST"
	}
	return r.Method
}

func (s *server) reset() {
	s.mu.Lock()
	s.c = counts{ByKind: map[string]int{}}
	s.mu.Unlock()
}

func (s *server) take() counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	s.c = counts{ByKind: map[string]int{}}
	return c
}

func (s *server) Close() { s.ts.Close() }

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}
