package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	version = "1.2.3-1"
	srv := httptest.NewServer(handler())
	defer srv.Close()
	tests := []struct {
		name string
		path string
		code int
		body string
	}{
		{"version", "/", 200, "hello 1.2.3-1\n"},
		{"health", "/healthz", 200, "ok\n"},
		{"slow", "/?sleep=10ms", 200, "hello 1.2.3-1\n"},
		{"bad sleep", "/?sleep=forever", 400, "sleep: want a duration up to 1m\n"},
		{"unknown path", "/nope", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || string(b) != tt.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, b, tt.code, tt.body)
			}
		})
	}
}

// TestStampedHealthStatus: a build stamped with another health status serves
// its version but fails /healthz with that status.
func TestStampedHealthStatus(t *testing.T) {
	defer func(v string) { healthStatus = v }(healthStatus)
	for _, tt := range []struct {
		stamp string
		code  int
	}{{"503", 503}, {"500", 500}, {"garbage", 500}} {
		t.Run(tt.stamp, func(t *testing.T) {
			healthStatus = tt.stamp
			srv := httptest.NewServer(handler())
			defer srv.Close()
			for path, want := range map[string]int{"/healthz": tt.code, "/": 200} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
				}
			}
		})
	}
}

// TestDrain stops the server (as SIGTERM does) while a request is in flight:
// that request completes, new connections are refused, serve returns nil.
func TestDrain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, Config{Drain: 5 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	url := "http://" + ln.Addr().String()

	type result struct {
		code int
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/?sleep=500ms")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- result{code: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(100 * time.Millisecond) // let the request reach the handler
	stop()

	r := <-inflight
	if r.err != nil || r.code != 200 || !strings.HasPrefix(r.body, "hello ") {
		t.Errorf("in-flight request: %d %q %v", r.code, r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("still accepting after drain")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Config
		err  string
	}{
		{"defaults", nil, DefaultConfig(), ""},
		{"set", map[string]string{"PORT": "9000", "DRAIN_TIMEOUT": "3s", "CLOCK_INTERVAL": "1m"},
			Config{Port: 9000, Drain: 3 * time.Second, ClockInterval: time.Minute}, ""},
		{"bad port", map[string]string{"PORT": "http"}, Config{}, `PORT "http": not a port number`},
		{"bad drain", map[string]string{"DRAIN_TIMEOUT": "-1s"}, Config{}, `DRAIN_TIMEOUT "-1s": not a positive duration like 10s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v %v, want %+v", got, err, tt.want)
			}
		})
	}
}
