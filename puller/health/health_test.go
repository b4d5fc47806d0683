package health

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The shape the agent declares (puller.Checker).
var _ interface {
	Check(ctx context.Context) error
} = (*Checker)(nil)

// scripted serves the given status codes in turn (the last one repeats);
// a negative code means "hang longer than the request timeout, then 200".
type scripted struct {
	mu    sync.Mutex
	codes []int
	n     int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	code := s.codes[min(s.n, len(s.codes)-1)]
	s.n++
	s.mu.Unlock()
	switch {
	case code < 0:
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	case code == http.StatusFound:
		http.Redirect(w, r, "/elsewhere", code)
	default:
		w.WriteHeader(code)
		w.Write([]byte(http.StatusText(code) + " from the app\n"))
	}
}

func (s *scripted) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		codes    []int
		wantReqs int    // requests made (exact when healthy, at least when not)
		wantErr  string // substring; "" = healthy
	}{
		{name: "healthy at once", codes: []int{200}, wantReqs: 3},
		{name: "any 2xx counts", codes: []int{204, 200, 201}, wantReqs: 3},
		{name: "a failure restarts the count", codes: []int{200, 200, 503, 200, 200, 200}, wantReqs: 6},
		{name: "slow start", codes: []int{502, 502, 502, 200}, wantReqs: 6},
		{name: "never healthy", codes: []int{503}, wantReqs: 3, wantErr: "last: 503 Service Unavailable: Service Unavailable from the app"},
		{name: "flapping never reaches the streak", codes: []int{200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500, 200, 200, 500}, wantReqs: 3, wantErr: "at most 2 of 3 consecutive 2xx"},
		{name: "a redirect is not healthy", codes: []int{302}, wantReqs: 3, wantErr: "last: 302 Found"},
		{name: "request timeout", codes: []int{-1}, wantReqs: 2, wantErr: "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{codes: tt.codes}
			srv := httptest.NewServer(s)
			defer srv.Close()
			// A healthy check returns early: give it all the time a loaded
			// machine may need. An unhealthy one runs to its deadline.
			deadline := 10 * time.Second
			if tt.wantErr != "" {
				deadline = 400 * time.Millisecond
			}
			c, err := New(Config{URL: srv.URL + "/health", Consecutive: 3, Interval: 20 * time.Millisecond,
				Timeout: 100 * time.Millisecond, Deadline: deadline})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Check(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if s.requests() != tt.wantReqs {
					t.Errorf("requests = %d, want %d", s.requests(), tt.wantReqs)
				}
				return
			}
			if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check = %v, want ErrUnhealthy containing %q", err, tt.wantErr)
			}
			if s.requests() < tt.wantReqs {
				t.Errorf("requests = %d, want at least %d before giving up", s.requests(), tt.wantReqs)
			}
		})
	}
}

func TestCheckConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := New(Config{URL: url, Interval: 10 * time.Millisecond, Deadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Check(context.Background())
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Check = %v, want ErrUnhealthy naming the refused connection", err)
	}
}

func TestCheckStopsWithContext(t *testing.T) {
	s := &scripted{codes: []int{503}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, Interval: 10 * time.Millisecond, Deadline: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for s.requests() < 3 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	if err := c.Check(ctx); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("Check after cancel = %v, want ErrUnhealthy", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tt := range []struct{ name, url, want string }{
		{"empty", "", `health url "": not an http(s) URL`},
		{"no scheme", "localhost:8080/health", `health url "localhost:8080/health": not an http(s) URL`},
		{"ftp", "ftp://x/health", `health url "ftp://x/health": not an http(s) URL`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{URL: tt.url})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("New = %v, want %s", err, tt.want)
			}
		})
	}
	if _, err := New(Config{URL: "http://x/", Consecutive: -1}); err == nil {
		t.Error("New accepted consecutive -1")
	}
}
