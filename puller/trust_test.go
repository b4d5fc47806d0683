package puller_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/apt"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// isolatedApt is the real apt-get and apt-cache confined by testenv.Apt
// (its own lists and cache, the machine's sources left alone), with the
// app's source list at sources.
func isolatedApt(t *testing.T, sources string) *apt.Installer {
	t.Helper()
	testenv.NeedTools(t, "apt-cache", "dpkg-query")
	var opts []string
	args := testenv.NewAptSource(t, "# the app's own source list is refreshed alone").Args()
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-o" {
			opts = append(opts, args[i+1])
			i++
		}
	}
	return apt.New(apt.Config{SourcesList: sources, LockTimeout: 5 * time.Second, Options: opts,
		Logger: slog.New(slog.DiscardHandler)})
}

// A host whose apt source file is missing fails with a host fault: no
// version is marked broken however often it tries, it records state failed
// with its target and reason, leaves the rollout, raises host_failed, waits
// retry_after before trying again, and a new instance still bootstraps.
func TestHostFaultBrandsNothing(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(3)
	tb.index.publish("1.0-1")
	tb.index.publish("1.1-1")
	ctx := context.Background()
	inst := isolatedApt(t, filepath.Join(t.TempDir(), "does-not-exist.sources"))
	clk := &clock{now: time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)}
	newAgent := func() *puller.Agent {
		steps := tb.fleet.host("i-bad")
		a, err := puller.New(tb.cfg, "i-bad", puller.Deps{
			Apps: []puller.AppDeps{{Index: tb.index, Installer: inst, Restarter: steps, Drainer: steps, Checker: steps}},
			Lock: tb.sem, State: tb.state, Members: tb.members, Publisher: tb.events,
			Compare: strings.Compare, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// Two runs, as two `puller once` processes, the second after the
	// quarantine: neither brands a version.
	for run := 1; run <= 2; run++ {
		err := newAgent().Once(ctx)
		if !errors.Is(err, puller.ErrHostFault) {
			t.Fatalf("run %d: Once = %v, want a host fault", run, err)
		}
		if broken, _ := tb.state.Broken(ctx, "hello", "staging"); len(broken) != 0 {
			t.Fatalf("run %d: a host fault marked versions broken: %v", run, broken)
		}
		// A third process within retry_after reads the quarantine from the
		// host's record and tries nothing.
		if err := newAgent().Once(ctx); err != nil {
			t.Fatalf("run %d: a quarantined process: %v", run, err)
		}
		if n := len(tb.events.of(event.HostFailed)); n != run {
			t.Fatalf("run %d: %d host_failed events, want %d (a quarantined process tried again)", run, n, run)
		}
		clk.add(tb.cfg.RetryAfter)
	}
	hosts, _ := tb.state.Hosts(ctx, "hello", "staging")
	h := hosts["i-bad"]
	if h.State != puller.StateFailed || h.Target != "1.1-1" || h.Version != "" ||
		!strings.Contains(h.Reason, "does-not-exist.sources") || !strings.Contains(h.Reason, "host fault: source") {
		t.Errorf("host record %+v, want failed on the way to 1.1-1 with the missing source named as a host fault", h)
	}
	if h.RetryAt.IsZero() {
		t.Errorf("no retry_at in %+v", h)
	}
	if n := len(tb.events.of(event.HostFailed)); n != 2 {
		t.Errorf("%d host_failed events, want 2", n)
	}
	if n := len(tb.events.of(event.Halted)) + len(tb.events.of(event.RolledBack)); n != 0 {
		t.Errorf("%d halted/rolled_back events for a host fault that changed nothing", n)
	}
	if r, _ := tb.state.Rollout(ctx, "hello", "staging", "1.1-1"); r.HostFailed != 2 || r.Failed != 0 {
		t.Errorf("rollout %+v, want host_failed 2 and failed 0", r)
	}

	// One agent: quarantined, its next cycles start nothing until retry_after.
	clk.add(4 * tb.cfg.RetryAfter) // past the second fault's doubled wait
	a := newAgent()
	if err := a.Once(ctx); !errors.Is(err, puller.ErrHostFault) {
		t.Fatalf("Once = %v, want a host fault", err)
	}
	tries := len(tb.events.of(event.HostFailed))
	for i := 0; i < 3; i++ {
		clk.add(time.Minute)
		if err := a.Once(ctx); err != nil {
			t.Fatalf("a quarantined cycle: %v", err)
		}
	}
	if n := len(tb.events.of(event.HostFailed)); n != tries {
		t.Errorf("%d more tries within retry_after", n-tries)
	}
	clk.add(tb.cfg.RetryAfter)
	if err := a.Once(ctx); !errors.Is(err, puller.ErrHostFault) {
		t.Fatalf("after retry_after: Once = %v, want another try and host fault", err)
	}
	hosts, _ = tb.state.Hosts(ctx, "hello", "staging")
	if got, want := hosts["i-bad"].RetryAt, clk.Now().Add(2*tb.cfg.RetryAfter); !got.Equal(want) {
		t.Errorf("second fault in a row: retry at %v, want %v (the wait doubles)", got, want)
	}

	// A healthy new instance still bootstraps onto the newest version.
	if err := tb.agent("i-new", nil).Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap after the host faults: %v", err)
	}
	if v := tb.fleet.versionOf("i-new"); v != "1.1-1" {
		t.Errorf("bootstrap installed %q, want 1.1-1", v)
	}
}

// Broken marks written straight into Redis choose nothing: a host stays on
// its version (the one HSET downgraded the fleet to 1.0-1), and
// marks on every version move no host either.
func TestBrokenMarksMoveNoHost(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(3)
	for _, v := range []string{"1.0-1", "2.0-1", "3.0-1"} {
		tb.index.publish(v)
	}
	hosts := []string{"i-1", "i-2", "i-3"}
	for _, h := range hosts {
		tb.fleet.installed[h] = "3.0-1"
	}
	ctx := context.Background()
	for _, marks := range [][]any{
		{"3.0-1", "x", "2.0-1", "x"},
		{"1.0-1", "x"}, // now every version
	} {
		if err := tb.rdb.HSet(ctx, "aptfleet:hello:staging:broken", marks...).Err(); err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if err := tb.agent(h, nil).Once(ctx); err != nil {
				t.Fatalf("%s: %v", h, err)
			}
		}
		if n := len(tb.fleet.installs); n != 0 {
			t.Fatalf("marks %v: %d installs (%v), want 0", marks, n, tb.fleet.installs)
		}
	}
	for _, h := range hosts {
		if v := tb.fleet.versionOf(h); v != "3.0-1" {
			t.Errorf("%s runs %s, want 3.0-1", h, v)
		}
	}
}

// Bootstrap skips broken versions and installs the newest good one; when
// marks cover every version it installs nothing and still succeeds.
func TestBootstrapSkipsBrokenVersions(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	for _, v := range []string{"1.0-1", "1.1-1", "1.2-1"} {
		tb.index.publish(v)
	}
	ctx := context.Background()
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := tb.rdb.HSet(ctx, "aptfleet:hello:staging:broken", "1.2-1", `{"reason":"health check: 503","host":"i-9"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := tb.agent("i-a", log).Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-a"); v != "1.1-1" {
		t.Errorf("bootstrap installed %q, want 1.1-1", v)
	}
	if !strings.Contains(logs.String(), "version=1.2-1") || !strings.Contains(logs.String(), "health check: 503") {
		t.Errorf("bootstrap did not say it skipped 1.2-1 and why:\n%s", logs.String())
	}
	if err := tb.rdb.HSet(ctx, "aptfleet:hello:staging:broken", "1.1-1", "x", "1.0-1", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if err := tb.agent("i-b", log).Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap with every version marked broken: %v", err)
	}
	if v := tb.fleet.versionOf("i-b"); v != "" {
		t.Errorf("bootstrap installed %q with every version marked broken", v)
	}
}

// With broken_after 2 a version is marked only once two distinct hosts had a
// release failure on it (the same host failing twice counts once), and
// while in doubt the rollout goes on at cap 1.
func TestBrokenAfterCountsDistinctHosts(t *testing.T) {
	tb := newTestbed(t)
	tb.cfg.BrokenAfter = 2
	tb.members.n.Store(9) // cap 3 at fraction 1/3
	tb.index.publish("1.0-1")
	for _, h := range []string{"i-1", "i-2", "i-3"} {
		tb.fleet.installed[h] = "1.0-1"
	}
	tb.fleet.bad["1.1-1"] = true
	tb.index.publish("1.1-1")
	ctx := context.Background()
	marked := func() bool {
		b, _ := tb.state.IsBroken(ctx, "hello", "staging", "1.1-1")
		return b != nil
	}
	if err := tb.agent("i-1", nil).Once(ctx); !errors.Is(err, puller.ErrDeployFailed) {
		t.Fatalf("i-1: %v, want a release failure", err)
	}
	if marked() {
		t.Fatal("marked broken after 1 host's release failure with broken_after 2")
	}
	if err := tb.agent("i-1", nil).Once(ctx); !errors.Is(err, puller.ErrDeployFailed) {
		t.Fatalf("i-1 again: %v", err)
	}
	if marked() {
		t.Fatal("marked broken after the same host failed twice")
	}
	if tb.fleet.versionOf("i-1") != "1.0-1" {
		t.Errorf("i-1 runs %s, want rolled back to 1.0-1", tb.fleet.versionOf("i-1"))
	}
	if err := tb.agent("i-2", nil).Once(ctx); !errors.Is(err, puller.ErrDeployFailed) {
		t.Fatalf("i-2: %v", err)
	}
	r, _ := tb.state.Rollout(ctx, "hello", "staging", "1.1-1")
	if !marked() || r.ReleaseFailures != 2 || r.Finished.IsZero() {
		t.Fatalf("after 2 hosts: marked %v, rollout %+v; want marked and finished", marked(), r)
	}
	if r.Cap != 1 {
		t.Errorf("i-2 was admitted under cap %d while the release was in doubt, want 1", r.Cap)
	}
	if n := len(tb.events.of(event.Halted)); n != 1 {
		t.Errorf("%d halted events, want 1", n)
	}
	before := len(tb.fleet.installsOf("1.1-1"))
	if err := tb.agent("i-3", nil).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if after := len(tb.fleet.installsOf("1.1-1")); after != before {
		t.Error("i-3 installed the branded version")
	}
}

// A pause holds every host: none starts a deploy, each records the target it
// is held from; bootstrap ignores it; after resume the deploy runs.
func TestPauseHoldsDeploys(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(2)
	tb.index.publish("1.0-1")
	tb.fleet.installed["i-1"] = "1.0-1"
	tb.index.publish("1.1-1")
	ctx := context.Background()
	ev := event.New(event.Paused, "hello", "staging", "", "", time.Now())
	if _, _, err := tb.state.SetPause(ctx, "hello", "staging", redisstate.Pause{Actor: "ops@bastion", Reason: "incident 42"}, ev); err != nil {
		t.Fatal(err)
	}
	a := tb.agent("i-1", nil)
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(tb.fleet.installs); n != 0 {
		t.Fatalf("%d installs while paused", n)
	}
	hosts, _ := tb.state.Hosts(ctx, "hello", "staging")
	if h := hosts["i-1"]; h.State != puller.StateHeld || h.Version != "1.0-1" || h.Target != "1.1-1" || !strings.Contains(h.Reason, "incident 42") {
		t.Errorf("host record %+v, want held on 1.0-1 -> 1.1-1 with the pause's reason", h)
	}
	if err := tb.agent("i-new", nil).Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-new"); v != "1.1-1" {
		t.Errorf("bootstrap while paused installed %q, want 1.1-1", v)
	}
	if _, err := tb.state.ClearPause(ctx, "hello", "staging", event.New(event.Resumed, "hello", "staging", "", "", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-1"); v != "1.1-1" {
		t.Errorf("after resume i-1 runs %s, want 1.1-1", v)
	}
}
