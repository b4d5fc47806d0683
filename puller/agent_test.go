package puller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/gossip"
	"github.com/aptfleet/aptfleet/puller/hook"
	"github.com/aptfleet/aptfleet/puller/redislock"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// memIndex is a repository dist held in memory, with an ETag that changes on
// every publish. It stands in for the repo reader in tests of the agent's
// logic; the reader itself is tested against a real signed repository.
type memIndex struct {
	mu       sync.Mutex
	etag     int
	versions []string
	checks   atomic.Int64  // conditional requests
	fetches  atomic.Int64  // index downloads
	block    chan struct{} // when set, Check waits on it
	// validUntil is the Valid-Until the index reports (zero: none).
	validUntil time.Time
}

func (m *memIndex) publish(v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.versions = append(m.versions, v)
	m.etag++
}

func (m *memIndex) Check(ctx context.Context, dist, etag string) (bool, string, error) {
	m.checks.Add(1)
	m.mu.Lock()
	block := m.block
	m.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return false, "", ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := fmt.Sprintf(`"%d"`, m.etag)
	return cur != etag, cur, nil
}

func (m *memIndex) Versions(ctx context.Context, dist, pkg string) (puller.Listing, error) {
	m.fetches.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	return puller.Listing{Versions: slices.Clone(m.versions), ValidUntil: m.validUntil}, nil
}

// fleet records what the hosts' apt, systemd, load balancer and health check
// were asked to do: the only steps the agent tests replace.
type fleet struct {
	mu        sync.Mutex
	installed map[string]string // host -> version
	installs  []install
	bad       map[string]bool // versions whose health check fails
	drained   int
	peak      int
	installD  time.Duration
}

type install struct {
	host, version string
	at            time.Time
}

func newFleet() *fleet {
	return &fleet{installed: map[string]string{}, bad: map[string]bool{}}
}

func (f *fleet) host(h string) *hostSteps { return &hostSteps{f: f, host: h} }

func (f *fleet) installsOf(v string) []install {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []install
	for _, i := range f.installs {
		if i.version == v {
			out = append(out, i)
		}
	}
	return out
}

func (f *fleet) versionOf(h string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.installed[h]
}

type hostSteps struct {
	f    *fleet
	host string
}

func (h *hostSteps) Installed(ctx context.Context, pkg string) (string, error) {
	return h.f.versionOf(h.host), nil
}

func (h *hostSteps) Install(ctx context.Context, pkg, version string) error {
	h.f.mu.Lock()
	h.f.installs = append(h.f.installs, install{h.host, version, time.Now()})
	d := h.f.installD
	h.f.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	h.f.mu.Lock()
	h.f.installed[h.host] = version
	h.f.mu.Unlock()
	return nil
}

func (h *hostSteps) Restart(ctx context.Context, app string) error { return nil }

func (h *hostSteps) Check(ctx context.Context) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if v := h.f.installed[h.host]; h.f.bad[v] {
		return fmt.Errorf("GET /healthz: 503 (version %s)", v)
	}
	return nil
}

func (h *hostSteps) Drain(ctx context.Context) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.f.drained++
	h.f.peak = max(h.f.peak, h.f.drained)
	return nil
}

func (h *hostSteps) Restore(ctx context.Context) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.f.drained--
	return nil
}

// fixedMembers is a membership of a fixed size, for tests about the deploy
// logic rather than about Serf (the gossip tests use real Serf members).
type fixedMembers struct{ n atomic.Int64 }

func (m *fixedMembers) Alive(app, env string) int { return int(m.n.Load()) }

// events collects published deploy events.
type events struct {
	mu  sync.Mutex
	all []event.Deploy
}

func (e *events) Publish(ctx context.Context, d event.Deploy) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, d)
	return nil
}

func (e *events) of(k event.Kind) []event.Deploy {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []event.Deploy
	for _, d := range e.all {
		if d.Kind == k {
			out = append(out, d)
		}
	}
	return out
}

// testbed is a real redis-server plus everything N agents share.
type testbed struct {
	t       *testing.T
	redis   *testenv.Redis
	rdb     *redis.Client
	sem     *redislock.Semaphore
	state   *redisstate.Store
	index   *memIndex
	fleet   *fleet
	members *fixedMembers
	events  *events
	cfg     puller.Config
	// validate, when set, is every host's validate hook (a real puller/hook
	// command, with HOST set to the host id).
	validate string
}

// rolloutThenFailure starts agents on i-1, i-2 and i-3 (all on 1.0-1),
// rolls them to 1.1-1, then has i-1 take 1.2-1, which fails its health
// check: i-1 rolls back and brands it. It returns the agents and once, which
// runs one cycle of an agent.
func (tb *testbed) rolloutThenFailure(t *testing.T) ([]*puller.Agent, func(*puller.Agent) error) {
	t.Helper()
	ctx := context.Background()
	tb.members.n.Store(3)
	hosts := []string{"i-1", "i-2", "i-3"}
	var agents []*puller.Agent
	for _, h := range hosts {
		tb.fleet.installed[h] = "1.0-1"
		agents = append(agents, tb.agent(h, nil))
	}
	once := func(a *puller.Agent) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return a.Once(ctx)
	}
	tb.index.publish("1.0-1")
	tb.index.publish("1.1-1")
	for _, a := range agents {
		if err := once(a); err != nil {
			t.Fatal(err)
		}
	}
	tb.fleet.mu.Lock()
	tb.fleet.bad["1.2-1"] = true
	tb.fleet.mu.Unlock()
	tb.index.publish("1.2-1")
	if err := once(agents[0]); !errors.Is(err, puller.ErrDeployFailed) {
		t.Fatalf("deploy of a failing release: %v, want ErrDeployFailed", err)
	}
	return agents, once
}

func newTestbed(t *testing.T) *testbed {
	t.Helper()
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	cfg := puller.DefaultConfig()
	cfg.Apps = []puller.App{puller.DefaultApp(puller.App{Name: "hello", Env: "staging", Repo: "s3://bucket/fleet"})}
	cfg.Fraction = 1.0 / 3
	cfg.LockTTL = time.Second
	cfg.Schedule = "@every 1h"
	cfg.Jitter = 0
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tb := &testbed{
		t: t, redis: srv, rdb: rdb,
		sem:   redislock.New(rdb, redislock.Options{Prefix: "aptfleet:", TTL: cfg.LockTTL, PollEvery: 50 * time.Millisecond, Logger: quiet}),
		state: redisstate.New(rdb, redisstate.Options{}),
		index: &memIndex{}, fleet: newFleet(), members: &fixedMembers{}, events: &events{}, cfg: cfg,
	}
	return tb
}

func (tb *testbed) agent(host string, log *slog.Logger) *puller.Agent {
	tb.t.Helper()
	return tb.agentWith(host, log, tb.members, nil)
}

func (tb *testbed) agentWith(host string, log *slog.Logger, members puller.Membership, tagger puller.VersionTagger) *puller.Agent {
	tb.t.Helper()
	steps := tb.fleet.host(host)
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ad := puller.AppDeps{Index: tb.index, Installer: steps, Restarter: steps, Drainer: steps, Checker: steps}
	if tb.validate != "" {
		ad.Validator = &hook.Command{Command: tb.validate, Timeout: 5 * time.Second, Env: []string{"HOST=" + host}}
	}
	a, err := puller.New(tb.cfg, host, puller.Deps{
		Apps: []puller.AppDeps{ad},
		Lock: tb.sem, State: tb.state, Members: members, Tagger: tagger, Publisher: tb.events,
		Compare: strings.Compare, // test versions are single-digit x.y-1: string order is dpkg order
		Logger:  log,
	})
	if err != nil {
		tb.t.Fatal(err)
	}
	return a
}

// waitFor polls cond until it holds or 20s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startMember runs a real Serf member on loopback tagged with hello/staging.
func startMember(t *testing.T, name string, join []string) *gossip.Member {
	t.Helper()
	cfg := gossip.DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Join = join
	cfg.Timing = gossip.FastTiming()
	cfg.Tags = map[string]string{gossip.TagApps: "hello", gossip.TagEnv: "staging"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := gossip.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		m.Leave(ctx)
	})
	return m
}

func TestRolloutHaltsOnFailingVersion(t *testing.T) {
	tb := newTestbed(t)
	const n = 9 // cap = floor(9/3) = 3
	tb.fleet.installD = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var agents []*puller.Agent
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	// Every agent embeds a real Serf member; the cap comes from their count
	// and the deploy trigger is a real gossip "deploy" event.
	var join []string
	var members []*gossip.Member
	for i := 0; i < n; i++ {
		h := fmt.Sprintf("i-%02d", i)
		m := startMember(t, h, join)
		if i == 0 {
			join = []string{m.Addr()}
		}
		members = append(members, m)
		tb.fleet.installed[h] = "1.0-1"
		a := tb.agentWith(h, nil, m, m)
		agents = append(agents, a)
		wg.Add(2)
		go func() { defer wg.Done(); a.Run(ctx) }()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-m.Deploys():
					a.Notify(d.App, d.Env)
				}
			}
		}()
	}
	waitFor(t, "every member sees 9 alive", func() bool {
		for _, m := range members {
			if m.Alive("hello", "staging") != n {
				return false
			}
		}
		return true
	})
	notifyAll := func() {
		if err := gossip.Announce(ctx, join, nil, "hello", "staging"); err != nil {
			t.Fatal(err)
		}
	}
	onVersion := func(v string) func() bool {
		return func() bool {
			for _, a := range agents {
				if tb.fleet.versionOf(a.Host()) != v {
					return false
				}
			}
			return true
		}
	}

	// A good version rolls out to everyone, never more than the cap at once.
	tb.index.publish("1.0-1")
	tb.index.publish("1.1-1")
	notifyAll()
	waitFor(t, "every host on 1.1-1", onVersion("1.1-1"))
	if got := len(tb.fleet.installsOf("1.1-1")); got != n {
		t.Errorf("1.1-1 installed %d times, want %d", got, n)
	}
	waitFor(t, "every member's version tag at 1.1-1", func() bool {
		v := members[0].Versions("hello", "staging")
		for _, a := range agents {
			if v[a.Host()] != "1.1-1" {
				return false
			}
		}
		return true
	})
	waitFor(t, "rollout 1.1-1 finished", func() bool {
		r, _ := tb.state.Rollout(ctx, "hello", "staging", "1.1-1")
		return r.Done == n && !r.Finished.IsZero()
	})
	// Serf views can differ for a moment (a member briefly suspected under
	// load): the smallest cap any host asked for is recorded and enforced.
	r, _ := tb.state.Rollout(ctx, "hello", "staging", "1.1-1")
	if r.Cap < 1 || r.Cap > 3 || r.Total < 1 || r.Total > n {
		t.Errorf("rollout = %+v, want a recorded cap in [1, 3] and total in [1, %d]", r, n)
	}
	tb.fleet.mu.Lock()
	peak := tb.fleet.peak
	tb.fleet.mu.Unlock()
	if peak < 1 || peak > r.Cap {
		t.Errorf("peak drained hosts = %d, want <= the recorded cap %d", peak, r.Cap)
	}

	// A failing version: the first wave fails, rolls back and marks it broken;
	// nobody else installs it.
	tb.fleet.mu.Lock()
	tb.fleet.bad["1.2-1"] = true
	tb.fleet.mu.Unlock()
	tb.index.publish("1.2-1")
	notifyAll()
	waitFor(t, "a broken mark", func() bool {
		b, _ := tb.state.IsBroken(ctx, "hello", "staging", "1.2-1")
		return b != nil
	})
	waitFor(t, "every host settled on 1.1-1", func() bool {
		st, _ := tb.state.Status(ctx, "hello", "staging", time.Minute)
		for _, h := range st.Hosts {
			if h.Version != "1.1-1" || h.State != puller.StateOK {
				return false
			}
		}
		return len(st.Hosts) == n && onVersion("1.1-1")()
	})
	bad := tb.fleet.installsOf("1.2-1")
	if len(bad) < 1 || len(bad) > 3 {
		t.Fatalf("1.2-1 installed on %d hosts, want the first wave only (1..3)", len(bad))
	}
	// A host of the first wave may read the mark a moment before another
	// host of that wave sets it, and install: that window cannot close.
	// What must hold is that no host starts the version once it is marked.
	b, _ := tb.state.IsBroken(ctx, "hello", "staging", "1.2-1")
	started := map[string]time.Time{}
	for _, e := range tb.events.of(event.Started) {
		if e.Version == "1.2-1" {
			started[e.Host] = e.Time
		}
	}
	for _, i := range bad {
		at, ok := started[i.host]
		switch {
		case !ok:
			t.Errorf("%s installed 1.2-1 without a started event", i.host)
		case at.After(b.At):
			t.Errorf("%s started 1.2-1 at %s, after it was marked broken at %s", i.host, at, b.At)
		}
	}
	if !strings.Contains(b.Reason, "health check") || !strings.Contains(b.Reason, "503") {
		t.Errorf("broken reason %q does not say why", b.Reason)
	}
	if got := len(tb.events.of(event.Halted)); got != 1 {
		t.Errorf("%d halted events, want exactly 1", got)
	}
	if rb, failed := len(tb.events.of(event.RolledBack)), len(tb.events.of(event.Failed)); rb != len(bad) || failed != len(bad) {
		t.Errorf("%d failed and %d rolled_back events for %d failing installs", failed, rb, len(bad))
	}
	for _, e := range tb.events.of(event.RolledBack) {
		if e.Version != "1.2-1" || e.Previous != "1.1-1" {
			t.Errorf("rolled_back event: version %q, previous %q; want the failed 1.2-1, back on 1.1-1", e.Version, e.Previous)
		}
	}
	if r, _ := tb.state.Rollout(ctx, "hello", "staging", "1.2-1"); r.Failed != len(bad) || r.Done != 0 || r.Finished.IsZero() {
		t.Errorf("rollout of 1.2-1 = %+v, want failed %d, finished", r, len(bad))
	}
	// Another trigger does not retry the broken version.
	before := len(tb.fleet.installs)
	notifyAll()
	time.Sleep(300 * time.Millisecond)
	if after := len(tb.fleet.installs); after != before {
		t.Errorf("a trigger after the halt installed %d more times", after-before)
	}

	// A new instance bootstraps onto the newest good version, skipping the broken one.
	fresh := tb.agent("i-new", nil)
	if err := fresh.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-new"); v != "1.1-1" {
		t.Errorf("bootstrap installed %q, want 1.1-1 (1.2-1 is broken)", v)
	}
}

func TestTickAndEventCoalesce(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.fleet.installed["i-1"] = "1.0-1"
	tb.index.publish("1.0-1")
	a := tb.agent("i-1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Run("arriving together before a cycle", func(t *testing.T) {
		a.Tick()
		a.Notify("hello", "staging")
		a.Tick()
		done := make(chan struct{})
		go func() { a.Run(ctx); close(done) }()
		waitFor(t, "one check", func() bool { return tb.index.checks.Load() >= 1 })
		time.Sleep(200 * time.Millisecond)
		if got := tb.index.checks.Load(); got != 1 {
			t.Fatalf("%d checks for a tick and an event arriving together, want 1", got)
		}
		cancel()
		<-done
	})
	t.Run("arriving during a cycle run one more", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tb.index.checks.Store(0)
		block := make(chan struct{})
		tb.index.mu.Lock()
		tb.index.block = block
		tb.index.mu.Unlock()
		go a.Run(ctx)
		a.Tick()
		waitFor(t, "a cycle in progress", func() bool { return tb.index.checks.Load() == 1 })
		a.Tick()
		a.Notify("hello", "staging")
		a.Notify("other", "staging") // not ours: ignored
		tb.index.mu.Lock()
		tb.index.block = nil
		tb.index.mu.Unlock()
		close(block)
		waitFor(t, "the second cycle", func() bool { return tb.index.checks.Load() == 2 })
		time.Sleep(200 * time.Millisecond)
		if got := tb.index.checks.Load(); got != 2 {
			t.Fatalf("%d checks, want 2 (the running cycle and one for everything that arrived meanwhile)", got)
		}
	})
}

func TestIdleTick(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.fleet.installed["i-1"] = "1.0-1"
	tb.index.publish("1.0-1")
	a := tb.agent("i-1", nil)
	ctx := context.Background()
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	checks, fetches, installs := tb.index.checks.Load(), tb.index.fetches.Load(), len(tb.fleet.installs)
	for i := 0; i < 5; i++ {
		if err := a.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := tb.index.checks.Load() - checks; got != 5 {
		t.Errorf("%d conditional requests for 5 idle ticks, want 5", got)
	}
	if got := tb.index.fetches.Load() - fetches; got != 0 {
		t.Errorf("%d index downloads on idle ticks, want 0", got)
	}
	if got := len(tb.fleet.installs) - installs; got != 0 {
		t.Errorf("%d installs on idle ticks, want 0", got)
	}
}

func TestRedisAwayNoDeployThenRecovers(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.fleet.installed["i-1"] = "1.0-1"
	tb.index.publish("1.0-1")
	var logs testenv.Buffer
	a := tb.agent("i-1", slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	a.Tick()
	waitFor(t, "the first cycle", func() bool { return tb.index.checks.Load() >= 1 })

	tb.redis.Kill()
	tb.index.publish("1.1-1")
	for i := 0; i < 3; i++ {
		a.Tick()
		time.Sleep(300 * time.Millisecond)
	}
	if got := tb.fleet.installsOf("1.1-1"); len(got) != 0 {
		t.Fatalf("installed 1.1-1 with Redis away: %v", got)
	}
	select {
	case err := <-done:
		t.Fatalf("agent stopped with Redis away: %v", err)
	default:
	}
	if n := strings.Count(logs.String(), "cycle failed"); n != 1 {
		t.Errorf("the repeating failure was logged %d times, want once:\n%s", n, logs.String())
	}

	tb.redis.Restart()
	waitFor(t, "the deploy after Redis returned", func() bool {
		a.Tick()
		return tb.fleet.versionOf("i-1") == "1.1-1"
	})
	// The recovery is logged when the cycle that deployed ends, just after
	// the install the wait above saw.
	waitFor(t, "the recovery in the log", func() bool { return strings.Contains(logs.String(), "cycle recovered") })
}

var _ = errors.Is

// stepLog is a timeline of the destructive steps of several hosts.
type stepLog struct {
	mu    sync.Mutex
	steps []string // "host:step"
}

func (l *stepLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, s)
}

func (l *stepLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.steps)
}

// loggedHost records its steps; onInstall runs inside Install, which takes installD.
type loggedHost struct {
	name      string
	log       *stepLog
	version   atomic.Value
	installD  time.Duration
	onInstall func()
}

func (h *loggedHost) Installed(ctx context.Context, pkg string) (string, error) {
	return h.version.Load().(string), nil
}

func (h *loggedHost) Install(ctx context.Context, pkg, v string) error {
	h.log.add(h.name + ":install")
	if h.onInstall != nil {
		h.onInstall()
	}
	time.Sleep(h.installD)
	h.version.Store(v)
	return nil
}

func (h *loggedHost) Restart(ctx context.Context, app string) error {
	h.log.add(h.name + ":restart")
	return nil
}

func (h *loggedHost) Drain(ctx context.Context) error   { h.log.add(h.name + ":drain"); return nil }
func (h *loggedHost) Restore(ctx context.Context) error { h.log.add(h.name + ":restore"); return nil }

// freezer is a TCP proxy to Redis that can stop forwarding for a while: the
// network partition a lease has to survive (or not).
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go f.pipe(c, u)
			go f.pipe(u, c)
		}
	}()
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A host cut off from Redis during its install loses its lease when the TTL
// runs out; another host is admitted in its place. The first host must not
// start its next destructive step (restart) until it holds a slot again,
// i.e. until the other host has finished.
func TestLostLeaseWaitsBeforeNextStep(t *testing.T) {
	tb := newTestbed(t)   // lock TTL 1s
	tb.members.n.Store(2) // cap = max(1, floor(2/3)) = 1
	tb.index.publish("1.0-1")
	log := &stepLog{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	quiet := slog.New(slog.DiscardHandler)
	fz := newFreezer(t, tb.redis.Addr)
	cut := redis.NewClient(&redis.Options{Addr: fz.ln.Addr().String()})
	defer cut.Close()
	cutSem := redislock.New(cut, redislock.Options{TTL: tb.cfg.LockTTL, PollEvery: 50 * time.Millisecond, Logger: quiet})
	cutState := redisstate.New(cut, redisstate.Options{})

	a := &loggedHost{name: "a", log: log, installD: 1800 * time.Millisecond}
	b := &loggedHost{name: "b", log: log, installD: 1500 * time.Millisecond}
	a.version.Store("1.0-1")
	b.version.Store("1.0-1")
	a.onInstall = func() {
		fz.frozen.Store(true)
		time.AfterFunc(1500*time.Millisecond, func() { fz.frozen.Store(false) })
	}
	newAgent := func(h *loggedHost, lock puller.Locker, state puller.State) *puller.Agent {
		ag, err := puller.New(tb.cfg, h.name, puller.Deps{
			Apps: []puller.AppDeps{{Index: tb.index, Installer: h, Restarter: h, Drainer: h}},
			Lock: lock, State: state, Members: tb.members, Compare: strings.Compare, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := ag.Once(ctx); err != nil {
			t.Fatal(err)
		}
		return ag
	}
	agentA := newAgent(a, cutSem, cutState)
	agentB := newAgent(b, tb.sem, tb.state)
	tb.index.publish("1.1-1")
	wg.Add(1)
	go func() { defer wg.Done(); agentA.Run(ctx) }()
	agentA.Tick()
	waitFor(t, "a installing", func() bool { return len(log.all()) >= 2 })
	wg.Add(1)
	go func() { defer wg.Done(); agentB.Run(ctx) }()
	agentB.Tick()
	waitFor(t, "both hosts on 1.1-1", func() bool {
		return a.version.Load() == "1.1-1" && b.version.Load() == "1.1-1" && len(log.all()) == 8
	})
	want := []string{"a:drain", "a:install", "b:drain", "b:install", "b:restart", "b:restore", "a:restart", "a:restore"}
	if steps := log.all(); !slices.Equal(steps, want) {
		t.Fatalf("steps %v\nwant %v: the host that lost its lease must wait for the other to finish", steps, want)
	}
}

// When the rollback fails too, the host stays out of the load balancer in
// state failed, the version is still marked broken, and no rolled_back event
// is sent.
func TestFailedRollbackKeepsHostOut(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.fleet.installed["i-1"] = "1.0-1"
	tb.index.publish("1.0-1")
	a := tb.agent("i-1", nil)
	ctx := context.Background()
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	tb.fleet.mu.Lock()
	tb.fleet.bad["1.0-1"], tb.fleet.bad["1.1-1"] = true, true // e.g. a shared dependency broke
	tb.fleet.mu.Unlock()
	tb.index.publish("1.1-1")
	err := a.Once(ctx)
	if !errors.Is(err, puller.ErrDeployFailed) {
		t.Fatalf("Once = %v, want ErrDeployFailed", err)
	}
	hosts, _ := tb.state.Hosts(ctx, "hello", "staging")
	if h := hosts["i-1"]; h.State != puller.StateFailed {
		t.Errorf("host state %+v, want failed", h)
	}
	if b, _ := tb.state.IsBroken(ctx, "hello", "staging", "1.1-1"); b == nil {
		t.Error("1.1-1 not marked broken")
	}
	tb.fleet.mu.Lock()
	drained := tb.fleet.drained
	tb.fleet.mu.Unlock()
	if drained != 1 {
		t.Errorf("%d hosts drained, want the failed host kept out", drained)
	}
	if n := len(tb.events.of(event.RolledBack)); n != 0 {
		t.Errorf("%d rolled_back events for a failed rollback", n)
	}
	if n := len(tb.events.of(event.Halted)); n != 1 {
		t.Errorf("%d halted events, want 1", n)
	}
	// The next cycle neither puts the unhealthy host back in service nor reports it ok.
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	tb.fleet.mu.Lock()
	drained = tb.fleet.drained
	tb.fleet.bad["1.0-1"] = false // the dependency is fixed
	tb.fleet.mu.Unlock()
	hosts, _ = tb.state.Hosts(ctx, "hello", "staging")
	if drained != 1 || hosts["i-1"].State != puller.StateFailed {
		t.Errorf("after another cycle: %d drained, state %q; want still out and failed", drained, hosts["i-1"].State)
	}
	// Once healthy again, the host goes back in service and reports ok.
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	tb.fleet.mu.Lock()
	drained = tb.fleet.drained
	tb.fleet.mu.Unlock()
	hosts, _ = tb.state.Hosts(ctx, "hello", "staging")
	if drained != 0 || hosts["i-1"].State != puller.StateOK || hosts["i-1"].Version != "1.0-1" {
		t.Errorf("after recovery: %d drained, host %+v; want restored, ok on 1.0-1", drained, hosts["i-1"])
	}
}

func TestScheduleTicks(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.cfg.Schedule = "@every 1s"
	tb.cfg.Jitter = 500 * time.Millisecond
	tb.fleet.installed["i-1"] = "1.0-1"
	tb.index.publish("1.0-1")
	a := tb.agent("i-1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	time.Sleep(3700 * time.Millisecond)
	cancel()
	<-done
	// The first tick comes within 1s (the schedule rounds to the second) plus
	// the host's offset (< 0.5s), then one every second: 3 or 4 in 3.7s.
	if got := tb.index.checks.Load(); got < 3 || got > 4 {
		t.Errorf("%d checks in 3.7s of @every 1s with jitter offset %s, want 3 or 4", got, puller.JitterOffset("i-1", tb.cfg.Jitter))
	}
}

// The validate hook runs between the restart and the health check of every
// move: a version it refuses is a release failure (rolled back, marked
// broken, halted) with the hook's output in the failed event, and the hook
// runs again for the version the host goes back to.
func TestValidateStep(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(3)
	dir := t.TempDir()
	// The hook logs every run and refuses 1.2-1 with a line on stderr.
	tb.validate = `echo "$HOST $APP $VERSION" >> ` + dir + `/runs; echo "checking $VERSION"; ` +
		`if [ "$VERSION" = 1.2-1 ]; then echo "GET /api/cart -> 500" >&2; exit 3; fi`
	ctx := context.Background()
	tb.index.publish("1.1-1")
	a := tb.agent("i-0", nil)
	if err := a.Once(ctx); err != nil {
		t.Fatalf("deploy of 1.1-1: %v", err)
	}
	tb.index.publish("1.2-1")
	err := a.Once(ctx)
	if !errors.Is(err, puller.ErrDeployFailed) {
		t.Fatalf("deploy of 1.2-1: %v, want a failed deploy", err)
	}
	if v := tb.fleet.versionOf("i-0"); v != "1.1-1" {
		t.Errorf("host runs %s after the refused 1.2-1, want 1.1-1", v)
	}
	b, _ := tb.state.IsBroken(ctx, "hello", "staging", "1.2-1")
	if b == nil || !strings.Contains(b.Reason, "validate") || !strings.Contains(b.Reason, "exit status 3") {
		t.Fatalf("broken mark %+v, want the validate failure", b)
	}
	failed := tb.events.of(event.Failed)
	if len(failed) != 1 || !strings.Contains(failed[0].Output, "GET /api/cart -> 500") || !strings.Contains(failed[0].Output, "checking 1.2-1") {
		t.Fatalf("failed events %+v, want one with the hook's output", failed)
	}
	if len(tb.events.of(event.Halted)) != 1 {
		t.Errorf("halted events: %d, want 1", len(tb.events.of(event.Halted)))
	}
	runs, err := os.ReadFile(dir + "/runs")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(runs), "i-0 hello 1.1-1\ni-0 hello 1.2-1\ni-0 hello 1.1-1\n"; got != want {
		t.Errorf("hook runs:\n%s\nwant (1.1-1, the refused 1.2-1, the rollback to 1.1-1):\n%s", got, want)
	}
}
