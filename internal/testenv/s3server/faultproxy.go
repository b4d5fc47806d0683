package s3server

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Fault is what a FaultProxy does to a request it picks.
type Fault int

const (
	// Pass forwards the request and returns the server's answer.
	Pass Fault = iota
	// DropAfter forwards the request, lets the server apply it, then closes
	// the client's connection without an answer: a lost response.
	DropAfter
	// Status503After forwards the request, lets the server apply it, then
	// answers 503 SlowDown instead of the server's answer.
	Status503After
	// Status500 answers 500 InternalError, either without forwarding the
	// request or after the server applied it (a coin flip per request).
	Status500
)

func (f Fault) String() string {
	return [...]string{"pass", "drop the response after the write", "503 after the write", "500 before or after"}[f]
}

// FaultProxy stands between an S3 client and a real S3-compatible server
// and injects faults into the requests it picks, so tests can see what a
// client reports when the server's answer does not say what happened. It
// forwards requests with their Host header, so SigV4 signatures made for
// the proxy's address still check at the server.
type FaultProxy struct {
	// URL is the endpoint clients use instead of the server's.
	URL string

	upstream string
	client   *http.Client
	mu       sync.Mutex
	fault    Fault
	match    func(*http.Request) bool
	prob     float64
	rng      *rand.Rand
	injected int
}

// NewFaultProxy starts a proxy in front of srv (plain HTTP, path-style) that
// passes every request until Set says otherwise. It stops when t ends.
func NewFaultProxy(t testing.TB, srv *Server) *FaultProxy {
	t.Helper()
	p := &FaultProxy{
		upstream: srv.URL,
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		rng:      rand.New(rand.NewPCG(uint64(len(t.Name())), 17)),
	}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	p.URL = ts.URL
	return p
}

// Set makes the proxy apply f, with probability prob, to every request
// match accepts (nil: every request).
func (p *FaultProxy) Set(f Fault, prob float64, match func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.prob, p.match = f, prob, match
}

// Injected returns how many faults the proxy has injected so far.
func (p *FaultProxy) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected
}

// PutTo matches PUT requests whose path ends in suffix ("/InRelease").
func PutTo(suffix string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, suffix)
	}
}

// pick decides the fault for one request, and for Status500 whether it
// comes before forwarding.
func (p *FaultProxy) pick(r *http.Request) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault == Pass || (p.match != nil && !p.match(r)) || p.rng.Float64() >= p.prob {
		return Pass, false
	}
	p.injected++
	return p.fault, p.rng.IntN(2) == 0
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fault, before := p.pick(r)
	if fault == Status500 && before {
		io.Copy(io.Discard, r.Body)
		s3Error(w, http.StatusInternalServerError, "InternalError", "injected before the request reached the server")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		s3Error(w, http.StatusBadGateway, "ProxyError", err.Error())
		return
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Expect") // the body is already here
	out.Host = r.Host
	out.ContentLength = r.ContentLength
	resp, err := p.client.Do(out)
	if err != nil {
		s3Error(w, http.StatusBadGateway, "ProxyError", err.Error())
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s3Error(w, http.StatusBadGateway, "ProxyError", err.Error())
		return
	}
	switch fault {
	case DropAfter:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case Status503After:
		s3Error(w, http.StatusServiceUnavailable, "SlowDown", "injected after the server applied the request")
		return
	case Status500:
		s3Error(w, http.StatusInternalServerError, "InternalError", "injected after the server applied the request")
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(data)
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>`+msg+`</Message></Error>`)
}
