package puller_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/health"
	"github.com/aptfleet/aptfleet/puller/lb"
)

// countingDrainer counts the hosts out of the load balancer at once.
type countingDrainer struct {
	puller.Drainer
	out, peak *atomic.Int64
}

func (d countingDrainer) Drain(ctx context.Context) error {
	n := d.out.Add(1)
	for p := d.peak.Load(); n > p && !d.peak.CompareAndSwap(p, n); p = d.peak.Load() {
	}
	return d.Drainer.Drain(ctx)
}

func (d countingDrainer) Restore(ctx context.Context) error {
	err := d.Drainer.Restore(ctx)
	d.out.Add(-1)
	return err
}

// Yanking the running version moves every host down to the newest listed
// version one at a time (cap 1), through the same drain, install, health
// check path as an upgrade, behind a real HAProxy under steady load: 0
// failed requests.
func TestYankStepsDownUnderLoad(t *testing.T) {
	testenv.NeedTools(t, "haproxy", "redis-server")
	tb := newTestbed(t)
	const n = 3
	tb.members.n.Store(n) // cap 1 at fraction 1/3
	for _, v := range []string{"1.0-1", "2.0-1", "3.0-1"} {
		tb.index.publish(v)
	}
	var hosts []*webHost
	var servers []testenv.HAProxyServer
	for i := range n {
		h := startWebHost(t, fmt.Sprintf("i-%d", i), "3.0-1", nil)
		hosts = append(hosts, h)
		servers = append(servers, testenv.HAProxyServer{Name: h.name, Addr: h.addr})
	}
	hp := testenv.StartHAProxy(t, testenv.HAProxyOptions{Check: true, CheckPath: "/healthz", Servers: servers})
	ctx := context.Background()
	var out, peak atomic.Int64
	var agents []*puller.Agent
	for _, h := range hosts {
		hx, err := lb.NewHAProxy(lb.HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: h.name,
			DrainTime: 5 * time.Second, RestoreTimeout: 10 * time.Second, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := hx.Restore(ctx); err != nil { // in service
			t.Fatal(err)
		}
		chk, err := health.New(health.Config{URL: "http://" + h.addr + "/healthz", Consecutive: 2, Interval: 50 * time.Millisecond, Deadline: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		a, err := puller.New(tb.cfg, h.name, puller.Deps{
			Apps: []puller.AppDeps{{Index: tb.index, Installer: h, Restarter: h, Checker: chk,
				Drainer: countingDrainer{Drainer: hx, out: &out, peak: &peak}}},
			Lock: tb.sem, State: tb.state, Members: tb.members, Publisher: tb.events, Compare: strings.Compare,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Once(ctx); err != nil { // on 3.0-1, the newest: nothing to do
			t.Fatal(err)
		}
		agents = append(agents, a)
	}
	l := startLoad(hp.Frontend)
	time.Sleep(200 * time.Millisecond)
	tb.index.yank("3.0-1")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Go(func() { errs[i] = a.Once(ctx) })
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	l.end()
	t.Logf("yank of 3.0-1 under load: %d requests answered, %d failed; at most %d host(s) drained at once",
		l.ok.Load(), l.failed.Load(), peak.Load())
	for i, h := range hosts {
		if errs[i] != nil {
			t.Errorf("%s: %v", h.name, errs[i])
		}
		if got := h.installs(); len(got) != 1 || got[0] != "2.0-1" {
			t.Errorf("%s installed %v, want [2.0-1] (3.0-1 left the index)", h.name, got)
		}
	}
	if peak.Load() != 1 {
		t.Errorf("%d hosts drained at once, want 1 (cap 1)", peak.Load())
	}
	if l.failed.Load() != 0 {
		t.Errorf("%d requests failed, e.g. %v", l.failed.Load(), l.failures[:min(len(l.failures), 5)])
	}
	if l.ok.Load() < 50 {
		t.Errorf("only %d requests: the load did not overlap the step-down", l.ok.Load())
	}
}
