package puller_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/health"
	"github.com/aptfleet/aptfleet/puller/lb"
	"github.com/aptfleet/aptfleet/puller/redislock"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// webHost is one host's app behind HAProxy: an HTTP server whose answers
// depend on the version "installed". A version listed in bad answers 200 on
// /healthz but 500 to every fifth request of /, as a release that passes its
// health check and fails real traffic.
type webHost struct {
	name    string
	addr    string
	version atomic.Value // string
	bad     map[string]bool
	count   atomic.Int64
	srv     *http.Server
	mu      sync.Mutex
	log     []string // versions installed, in order
}

func startWebHost(t *testing.T, name, version string, bad map[string]bool) *webHost {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &webHost{name: name, addr: l.Addr().String(), bad: bad}
	h.version.Store(version)
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := h.version.Load().(string)
		if r.URL.Path == "/" && h.bad[v] && h.count.Add(1)%5 == 0 {
			http.Error(w, "release-error "+v+" on "+name, http.StatusInternalServerError)
			return
		}
		io.WriteString(w, v+" on "+name)
	})}
	go h.srv.Serve(l)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (h *webHost) Installed(ctx context.Context, pkg string) (string, error) {
	return h.version.Load().(string), nil
}

func (h *webHost) Install(ctx context.Context, pkg, version string) error {
	time.Sleep(100 * time.Millisecond)
	h.mu.Lock()
	h.log = append(h.log, version)
	h.mu.Unlock()
	h.version.Store(version)
	return nil
}

func (h *webHost) Restart(ctx context.Context, app string) error { return nil }

func (h *webHost) installs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

// load sends requests through HAProxy from 8 clients until stopped, and
// counts the answers: the 500s a bad release served itself (its body says
// so) apart from every other failure.
type load struct {
	ok, releaseErrors, failed atomic.Int64
	mu                        sync.Mutex
	failures                  []string
	stop                      context.CancelFunc
	wg                        sync.WaitGroup
}

func startLoad(frontend string) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel}
	for range 8 {
		l.wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				resp, err := c.Get("http://" + frontend + "/")
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				switch {
				case err == nil && resp.StatusCode == 200:
					l.ok.Add(1)
				case err == nil && resp.StatusCode == 500 && strings.HasPrefix(string(body), "release-error "):
					l.releaseErrors.Add(1)
				default:
					if ctx.Err() != nil {
						return
					}
					l.failed.Add(1)
					l.mu.Lock()
					if err != nil {
						l.failures = append(l.failures, err.Error())
					} else {
						l.failures = append(l.failures, resp.Status+": "+string(body))
					}
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

func (l *load) end() {
	l.stop()
	l.wg.Wait()
}

// A canary stage on a real HAProxy and a real Redis, under load: four
// hosts, one canary, a bake of 3 s with the analysis on HAProxy's counters.
// A release that answers its health check but fails 20 % of / fails on the
// canary: the canary rolls back, the version is branded with the figures,
// and no other host installs it. A good release then passes its bake and
// rolls through the rest. Not one request fails other than the 500s the bad
// release served during its bake.
func TestCanaryStageOnHAProxyUnderLoad(t *testing.T) {
	testenv.NeedTools(t, "haproxy", "redis-server")
	const n = 4
	bad := map[string]bool{"2.0-1": true}
	var hosts []*webHost
	var servers []testenv.HAProxyServer
	for i := range n {
		h := startWebHost(t, fmt.Sprintf("i-%d", i), "1.0-1", bad)
		hosts = append(hosts, h)
		servers = append(servers, testenv.HAProxyServer{Name: h.name, Addr: h.addr})
	}
	hp := testenv.StartHAProxy(t, testenv.HAProxyOptions{Check: true, CheckPath: "/healthz", Servers: servers})
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	state := redisstate.New(rdb, redisstate.Options{})

	cfg := puller.DefaultConfig()
	app := puller.DefaultApp(puller.App{Name: "hello", Env: "production", Repo: "s3://bucket/fleet",
		Canary: puller.Canary{Hosts: 1, Bake: 3 * time.Second}})
	app.Drain.Strategy = "haproxy"
	app.Drain.HAProxy.Backend = hp.Backend
	cfg.Apps = []puller.App{app}
	cfg.Fraction = 0.5
	cfg.LockTTL = 2 * time.Second
	cfg.LockPoll = 100 * time.Millisecond
	cfg.Schedule = "@every 1h"
	cfg.Jitter = 0
	index := &memIndex{}
	index.publish("1.0-1")
	members := &fixedMembers{}
	members.n.Store(n)
	evs := &events{}
	quiet := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var agents []*puller.Agent
	for _, h := range hosts {
		hx, err := lb.NewHAProxy(lb.HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: h.name,
			DrainTime: 5 * time.Second, RestoreTimeout: 10 * time.Second, Poll: 20 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		chk, err := health.New(health.Config{URL: "http://" + h.addr + "/healthz", Consecutive: 2, Interval: 50 * time.Millisecond, Deadline: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		a, err := puller.New(cfg, h.name, puller.Deps{
			Apps:  []puller.AppDeps{{Index: index, Installer: h, Restarter: h, Drainer: hx, Checker: chk, LoadStats: hx}},
			Lock:  redislock.New(rdb, redislock.Options{TTL: cfg.LockTTL, PollEvery: cfg.LockPoll, Logger: quiet}),
			State: state, Canaries: state, Members: members, Publisher: evs,
			Compare: strings.Compare, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Once(ctx); err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
		wg.Go(func() { a.Run(ctx) })
	}
	// Every server UP by HAProxy's own checks before the load starts.
	for _, h := range hosts {
		hx, _ := lb.NewHAProxy(lb.HAProxyConfig{Socket: hp.Socket, Backend: hp.Backend, Server: h.name, Poll: 20 * time.Millisecond})
		if err := hx.Restore(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ld := startLoad(hp.Frontend)
	defer ld.end()
	notify := func() {
		for _, a := range agents {
			a.Notify("hello", "production")
		}
	}
	onAll := func(v string) func() bool {
		return func() bool {
			for _, h := range hosts {
				if h.version.Load().(string) != v {
					return false
				}
			}
			return true
		}
	}

	// The bad release.
	index.publish("2.0-1")
	notify()
	waitFor(t, "2.0-1 branded", func() bool { b, _ := state.IsBroken(ctx, "hello", "production", "2.0-1"); return b != nil })
	waitFor(t, "every host back on 1.0-1", onAll("1.0-1"))
	var took []string
	for _, h := range hosts {
		for _, v := range h.installs() {
			if v == "2.0-1" {
				took = append(took, h.name)
			}
		}
	}
	if len(took) != 1 {
		t.Fatalf("hosts that installed 2.0-1: %v, want the one canary", took)
	}
	b, _ := state.IsBroken(ctx, "hello", "production", "2.0-1")
	if b.Host != took[0] || !strings.Contains(b.Reason, "analysis failed") || !strings.Contains(b.Reason, "max_error_rate") {
		t.Errorf("broken mark %+v: want the canary's analysis with its figures", b)
	}
	cf := evs.of(event.CanaryFailed)
	if len(cf) != 1 || cf[0].Host != took[0] || !strings.Contains(cf[0].Reason, "5xx") {
		t.Errorf("canary_failed events %+v, want one from the canary with the figures", cf)
	}
	if len(evs.of(event.Halted)) != 1 {
		t.Errorf("halted events: %d, want 1", len(evs.of(event.Halted)))
	}
	t.Logf("bad release: %s", b.Reason)

	// The good release: bakes, passes, rolls on.
	index.publish("3.0-1")
	notify()
	waitFor(t, "every host on 3.0-1", onAll("3.0-1"))
	cp := evs.of(event.CanaryPassed)
	if len(cp) != 1 || !strings.Contains(cp[0].Reason, "analysis passed") {
		t.Errorf("canary_passed events %+v, want one with the figures", cp)
	}
	if cs := evs.of(event.CanaryStarted); len(cs) != 2 {
		t.Errorf("canary_started events: %d, want one per release", len(cs))
	}
	// The canary baked before anyone else installed.
	var canary string
	for _, e := range evs.of(event.CanaryStarted) {
		if e.Version == "3.0-1" {
			canary = e.Host
		}
	}
	for _, e := range evs.of(event.Started) {
		if e.Version == "3.0-1" && e.Host != canary && e.Time.Before(cp[0].Time) {
			t.Errorf("%s started 3.0-1 at %s, before the canary passed at %s", e.Host, e.Time, cp[0].Time)
		}
	}
	ld.end()
	t.Logf("under load: %d requests answered, %d 500s served by the bad release during its bake, %d other failures",
		ld.ok.Load(), ld.releaseErrors.Load(), ld.failed.Load())
	if ld.failed.Load() != 0 {
		t.Errorf("%d requests failed, e.g. %v", ld.failed.Load(), ld.failures[:min(len(ld.failures), 5)])
	}
	if ld.releaseErrors.Load() == 0 {
		t.Error("the bad release served no 500: its bake took no traffic")
	}
}
