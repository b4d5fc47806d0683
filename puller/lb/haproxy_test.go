package lb

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
)

// The shape the agent declares (puller.Drainer), for every strategy.
type drainer interface {
	Drain(ctx context.Context) error
	Restore(ctx context.Context) error
}

var (
	_ drainer = None{}
	_ drainer = (*HAProxy)(nil)
	_ drainer = (*ELBv2)(nil)
	_ drainer = (*Command)(nil)
)

// named is an app server that answers its own name.
func named(t *testing.T, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// hits sends n requests through the frontend and counts answers per server.
func hits(t *testing.T, frontend string, n int) map[string]int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	got := map[string]int{}
	for range n {
		resp, err := c.Get("http://" + frontend + "/")
		if err != nil {
			t.Fatalf("request through haproxy: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request through haproxy: %s %s", resp.Status, b)
		}
		got[string(b)]++
	}
	return got
}

func TestHAProxyDrainRestore(t *testing.T) {
	web1, web2 := named(t, "web1"), named(t, "web2")
	hp := testenv.StartHAProxy(t, testenv.HAProxyOptions{Check: true, Servers: []testenv.HAProxyServer{
		{Name: "web1", Addr: web1.Listener.Addr().String()},
		{Name: "web2", Addr: web2.Listener.Addr().String()},
	}})
	ctx := context.Background()
	for _, tt := range []struct{ name, socket string }{
		{"unix socket", hp.Socket},
		{"tcp socket", "tcp://" + hp.TCPSocket},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHAProxy(HAProxyConfig{Socket: tt.socket, Backend: hp.Backend, Server: "web1",
				DrainTime: 5 * time.Second, RestoreTimeout: 10 * time.Second, Poll: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Restore(ctx); err != nil { // both servers UP before starting
				t.Fatalf("Restore before drain: %v", err)
			}
			if err := h.Drain(ctx); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			st, err := h.Stat(ctx)
			if err != nil || st.Status != "DRAIN" {
				t.Fatalf("after Drain: %+v, %v; want status DRAIN", st, err)
			}
			if got := hits(t, hp.Frontend, 6); got["web1"] != 0 || got["web2"] != 6 {
				t.Fatalf("drained web1 still got traffic: %v", got)
			}
			if err := h.Restore(ctx); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			st, err = h.Stat(ctx)
			if err != nil || !strings.HasPrefix(st.Status, "UP") {
				t.Fatalf("after Restore: %+v, %v; want UP", st, err)
			}
			if got := hits(t, hp.Frontend, 6); got["web1"] != 3 || got["web2"] != 3 {
				t.Fatalf("restored web1 not balanced again: %v", got)
			}
			if err := h.Disable(ctx); err != nil {
				t.Fatalf("Disable: %v", err)
			}
			if st, err = h.Stat(ctx); err != nil || st.Status != "MAINT" {
				t.Fatalf("after Disable: %+v, %v; want MAINT", st, err)
			}
			if got := hits(t, hp.Frontend, 6); got["web1"] != 0 || got["web2"] != 6 {
				t.Fatalf("disabled web1 still got traffic: %v", got)
			}
			if err := h.Restore(ctx); err != nil {
				t.Fatalf("Restore after Disable: %v", err)
			}
		})
	}
}

// slowServer holds every request until release is closed.
func slowServer(t *testing.T) (srv *httptest.Server, started chan struct{}, release chan struct{}) {
	started, release = make(chan struct{}, 16), make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "done")
	}))
	t.Cleanup(srv.Close)
	return srv, started, release
}

func TestHAProxyDrainWaitsForSessions(t *testing.T) {
	app, started, release := slowServer(t)
	hp := testenv.StartHAProxy(t, testenv.HAProxyOptions{Servers: []testenv.HAProxyServer{{Name: "web1", Addr: app.Listener.Addr().String()}}})
	h, err := NewHAProxy(HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: "web1", DrainTime: 30 * time.Second, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reqErr := make(chan error, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + hp.Frontend + "/slow")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "done" {
				err = errors.New("in-flight request answered " + resp.Status + " " + string(b))
			}
		}
		reqErr <- err
	}()
	<-started
	var released atomic.Bool
	drained := make(chan error, 1)
	go func() { drained <- h.Drain(context.Background()) }()
	// Drain must still be waiting while the request is in flight.
	select {
	case err := <-drained:
		t.Fatalf("Drain returned with a session in flight: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	st, err := h.Stat(context.Background())
	if err != nil || st.Status != "DRAIN" || st.Sessions != 1 {
		t.Fatalf("while draining: %+v, %v; want DRAIN with 1 session", st, err)
	}
	released.Store(true)
	close(release)
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if !released.Load() {
		t.Fatal("Drain returned before the in-flight request ended")
	}
	if err := <-reqErr; err != nil {
		t.Fatalf("the in-flight request failed during the drain: %v", err)
	}
}

func TestHAProxyDrainTimePasses(t *testing.T) {
	app, started, _ := slowServer(t)
	hp := testenv.StartHAProxy(t, testenv.HAProxyOptions{Servers: []testenv.HAProxyServer{{Name: "web1", Addr: app.Listener.Addr().String()}}})
	h, err := NewHAProxy(HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: "web1", DrainTime: 300 * time.Millisecond, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hp.Frontend+"/stuck", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	if err := h.Drain(context.Background()); err != nil {
		t.Fatalf("Drain with a stuck session: %v, want nil once the drain time passed", err)
	}
	if st, err := h.Stat(context.Background()); err != nil || st.Sessions != 1 {
		t.Fatalf("after the drain time: %+v, %v; want the stuck session still counted", st, err)
	}
}

func TestHAProxyErrors(t *testing.T) {
	web1 := named(t, "web1")
	down := named(t, "down")
	downAddr := down.Listener.Addr().String()
	down.Close() // nothing listens there: HAProxy's check marks it DOWN
	hp := testenv.StartHAProxy(t, testenv.HAProxyOptions{Check: true, Servers: []testenv.HAProxyServer{
		{Name: "web1", Addr: web1.Listener.Addr().String()},
		{Name: "dead", Addr: downAddr},
	}})
	ctx := context.Background()
	t.Run("unknown server", func(t *testing.T) {
		h, _ := NewHAProxy(HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: "nope"})
		err := h.Drain(ctx)
		if !errors.Is(err, ErrHAProxy) || !strings.Contains(err.Error(), `"set server app/nope state drain"`) {
			t.Fatalf("Drain = %v, want ErrHAProxy naming the command", err)
		}
	})
	t.Run("unknown backend", func(t *testing.T) {
		h, _ := NewHAProxy(HAProxyConfig{Socket: hp.Socket, Backend: "nope", Server: "web1"})
		if err := h.Drain(ctx); !errors.Is(err, ErrHAProxy) {
			t.Fatalf("Drain = %v, want ErrHAProxy", err)
		}
	})
	t.Run("no socket", func(t *testing.T) {
		h, _ := NewHAProxy(HAProxyConfig{Socket: t.TempDir() + "/none.sock", Backend: "app", Server: "web1"})
		if err := h.Drain(ctx); err == nil || !strings.Contains(err.Error(), "haproxy runtime API") {
			t.Fatalf("Drain = %v, want a runtime API connection error", err)
		}
	})
	t.Run("restore of a server that stays down", func(t *testing.T) {
		h, _ := NewHAProxy(HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: "dead", RestoreTimeout: 500 * time.Millisecond, Poll: 20 * time.Millisecond})
		// A server starts UP; wait for HAProxy's first failed check.
		for i := 0; ; i++ {
			st, err := h.Stat(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(st.Status, "DOWN") {
				break
			}
			if i == 250 {
				t.Fatalf("dead server never marked DOWN: %+v", st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		err := h.Restore(ctx)
		if err == nil || !strings.Contains(err.Error(), "restore app/dead: still DOWN") {
			t.Fatalf("Restore = %v, want still DOWN", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		for _, cfg := range []HAProxyConfig{
			{Backend: "", Server: "web1"},
			{Backend: "app", Server: "a b"},
			{Socket: "tcp://nohostport", Backend: "app", Server: "web1"},
		} {
			if _, err := NewHAProxy(cfg); err == nil {
				t.Errorf("NewHAProxy(%+v) succeeded", cfg)
			}
		}
	})
}
