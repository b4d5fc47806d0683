package lb

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
)

// flaky answers 500 to every n-th request (n = 0: never) after delay.
func flaky(t *testing.T, every int64, delay time.Duration) *httptest.Server {
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		if n := count.Add(1); every > 0 && n%every == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// load sends n requests through the frontend, 8 at a time, and counts the 5xx.
func load(t *testing.T, frontend string, n int) (fivexx int64) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	var bad atomic.Int64
	jobs := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for range jobs {
				resp, err := c.Get("http://" + frontend + "/")
				if err != nil {
					t.Errorf("request through haproxy: %v", err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					bad.Add(1)
				}
			}
		})
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return bad.Load()
}

// The canary analysis on a real HAProxy's counters: two servers behind one
// backend, the canary returning 500 at a set rate (or answering slowly), the
// other one healthy.
func TestCanaryAnalysisOnHAProxy(t *testing.T) {
	an := puller.Analysis{MaxErrorRate: 0.02, MaxErrorRateRatio: 2, MaxLatencyRatio: 1.5, MinRequests: 200}
	for _, tt := range []struct {
		name     string
		every    int64 // the canary answers 500 to every n-th request
		delay    time.Duration
		requests int
		pass     bool
		failed   string
	}{
		{"20% 5xx", 5, 0, 600, false, "error rate 20.00% > max_error_rate 2.00%"},
		{"healthy", 0, 0, 600, true, ""},
		{"slow", 0, 25 * time.Millisecond, 480, false, "the baseline's > max_latency_ratio 1.5"},
		{"too few requests", 0, 0, 200, false, "requests < min_requests 200"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			canary, base := flaky(t, tt.every, tt.delay), flaky(t, 0, 0)
			hp := testenv.StartHAProxy(t, testenv.HAProxyOptions{Servers: []testenv.HAProxyServer{
				{Name: "i-canary", Addr: canary.Listener.Addr().String()},
				{Name: "i-base", Addr: base.Listener.Addr().String()},
			}})
			h, err := NewHAProxy(HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: "i-canary"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			load(t, hp.Frontend, 20) // traffic before the bake is not counted
			var o puller.Observation
			sampleNow := func() {
				c, err := h.Counters(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(c) != 2 || c["i-canary"].Status != "no check" {
					t.Fatalf("counters %+v: want the two servers", c)
				}
				o.Add(c)
			}
			sampleNow()
			served := load(t, hp.Frontend, tt.requests/2)
			sampleNow()
			served += load(t, hp.Frontend, tt.requests/2)
			sampleNow()
			v := puller.Analyze(an, &o, []string{"i-canary"})
			t.Logf("%s (the clients saw %d 5xx)", v, served)
			if v.Canary.Errors != served || v.Baseline.Errors != 0 {
				t.Errorf("5xx counted: canary %d, baseline %d; the clients saw %d, all from the canary", v.Canary.Errors, v.Baseline.Errors, served)
			}
			if total := v.Canary.Requests + v.Baseline.Requests; total != int64(tt.requests) || v.Canary.Requests != int64(tt.requests/2) {
				t.Errorf("requests counted: canary %d + baseline %d, want %d each (round robin)", v.Canary.Requests, v.Baseline.Requests, tt.requests/2)
			}
			if v.Pass != tt.pass || !strings.Contains(strings.Join(v.Failed, "; "), tt.failed) {
				t.Errorf("verdict %s: want pass %v, failed containing %q", v, tt.pass, tt.failed)
			}
		})
	}
}
