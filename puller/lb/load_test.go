package lb

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
)

// appServer is one app process that can be stopped gracefully and started
// again on the same address, as a restart by systemd would.
type appServer struct {
	name, addr string
	srv        *http.Server
	done       chan struct{}
}

func startApp(t *testing.T, name, addr string) *appServer {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	a := &appServer{name: name, addr: l.Addr().String(), done: make(chan struct{})}
	a.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/work" {
			// A slow answer, already started: HAProxy cannot retry it
			// elsewhere once the server is cut off in the middle.
			io.WriteString(w, "working on it\n")
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
		}
		io.WriteString(w, name)
	})}
	go func() { a.srv.Serve(l); close(a.done) }()
	return a
}

// stop kills the app: connections close, in-flight requests are cut off
// (an app that does not finish its requests on SIGTERM). Only a drain
// before it saves them.
func (a *appServer) stop() {
	a.srv.Close()
	<-a.done
}

// TestHAProxyRollingRestartUnderLoad restarts every server of a backend in
// turn, each drained first and restored after, while clients keep sending
// requests through HAProxy: not one request may fail. The app is killed
// without finishing its requests and its answers are slow and already
// started, so HAProxy cannot retry them: without the drain, a few requests
// fail in every run (seen: 5 to 7 of about 100).
func TestHAProxyRollingRestartUnderLoad(t *testing.T) {
	testenv.NeedTools(t, "haproxy")
	apps := []*appServer{startApp(t, "web1", "127.0.0.1:0"), startApp(t, "web2", "127.0.0.1:0"), startApp(t, "web3", "127.0.0.1:0")}
	var servers []testenv.HAProxyServer
	for _, a := range apps {
		servers = append(servers, testenv.HAProxyServer{Name: a.name, Addr: a.addr})
	}
	hp := testenv.StartHAProxy(t, testenv.HAProxyOptions{Check: true, Servers: servers})
	t.Cleanup(func() {
		for _, a := range apps {
			a.stop()
		}
	})

	// In service first: every server UP by HAProxy's own checks.
	for _, a := range apps {
		h, err := NewHAProxy(HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: a.name, RestoreTimeout: 10 * time.Second, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	ctx, stopLoad := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				resp, err := c.Get("http://" + hp.Frontend + "/work")
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = errors.New(resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}

	for i, a := range apps {
		h, err := NewHAProxy(HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: a.name,
			DrainTime: 10 * time.Second, RestoreTimeout: 10 * time.Second, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Drain(context.Background()); err != nil {
			t.Fatalf("drain %s: %v", a.name, err)
		}
		a.stop()
		time.Sleep(time.Second) // down while "installing"
		apps[i] = startApp(t, a.name, a.addr)
		if err := h.Restore(context.Background()); err != nil {
			t.Fatalf("restore %s: %v", a.name, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	stopLoad()
	wg.Wait()
	t.Logf("rolling restart of 3 servers under load: %d requests answered, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during the rolling restart, e.g. %v", failed.Load(), failures[:min(len(failures), 5)])
	}
	if ok.Load() < 50 {
		t.Fatalf("only %d requests made: the load did not overlap the restarts", ok.Load())
	}
}
