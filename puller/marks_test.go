package puller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/redislock"
	"github.com/aptfleet/aptfleet/puller/statedir"
)

// markTrial is one randomized run of a halt followed by Redis losing its
// data.
type markTrial struct {
	loss      string        // "flushall" or "restart" (a redis-server without persistence)
	hosts     int           // hosts running before the loss
	delay     time.Duration // from the broken mark appearing to the loss
	join      string        // how a new host joins after the loss: "bootstrap" or "run"
	joinAt    time.Duration // after the loss
	restart   int           // the host whose agent restarts after the loss
	restartAt time.Duration // after the loss
}

func (tr markTrial) String() string {
	return fmt.Sprintf("%s, %d hosts, loss %s after the mark, new host (%s) at +%s, agent of host %d restarted at +%s",
		tr.loss, tr.hosts, tr.delay.Round(time.Millisecond), tr.join, tr.joinAt.Round(time.Millisecond),
		tr.restart, tr.restartAt.Round(time.Millisecond))
}

// markOutcome is what a trial saw after the loss.
type markOutcome struct {
	installs int      // installs of the broken version started after the loss
	who      []string // host +offset of each
	marked   bool     // the version is marked broken in Redis at the end
}

// TestMarksSurviveRedisDataLoss halts a rollout (the first host's health
// check fails, it rolls back and marks the version broken), then makes
// Redis lose its data right after: FLUSHALL, or a restart of a redis-server
// without persistence. A new host joins (by bootstrap, or a running agent
// whose first cycle sees the index) and one agent restarts, at random times
// within the next lease. No host may install the broken version after the
// loss. APTFLEET_MARK_TRIALS sets the trials per kind of loss (default 1;
// `make trials-marks` runs 20), APTFLEET_MARK_SEED replays a run.
func TestMarksSurviveRedisDataLoss(t *testing.T) {
	trials := 1
	if s := os.Getenv("APTFLEET_MARK_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("APTFLEET_MARK_TRIALS=%q: want a positive number", s)
		}
		trials = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("APTFLEET_MARK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("APTFLEET_MARK_SEED=%q: want a number", s)
		}
		seed = n
	}
	t.Logf("seed %d (APTFLEET_MARK_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	type tally struct{ trials, bad, installs, marked int }
	counts := map[string]*tally{}
	for _, loss := range []string{"flushall", "restart"} {
		counts[loss] = &tally{}
		for i := 0; i < trials; i++ {
			ttl := markTTL
			tr := markTrial{
				loss:      loss,
				hosts:     3 + rng.IntN(5),
				delay:     time.Duration(rng.Int64N(int64(300 * time.Millisecond))),
				join:      []string{"bootstrap", "run"}[rng.IntN(2)],
				joinAt:    time.Duration(rng.Int64N(int64(ttl))),
				restartAt: time.Duration(rng.Int64N(int64(ttl))),
			}
			tr.restart = rng.IntN(tr.hosts)
			t.Run(fmt.Sprintf("%s-%02d", loss, i), func(t *testing.T) {
				out := runMarkTrial(t, tr)
				c := counts[loss]
				c.trials++
				c.installs += out.installs
				if out.installs > 0 {
					c.bad++
					t.Errorf("%s: the broken version was installed %d times after the loss (%s)", tr, out.installs, strings.Join(out.who, ", "))
				} else {
					t.Logf("%s: not installed after the loss", tr)
				}
				if out.marked {
					c.marked++
				}
			})
		}
	}
	for _, loss := range []string{"flushall", "restart"} {
		c := counts[loss]
		t.Logf("%-8s trials %d, with the broken version installed after the loss %d (installs %d), marked again at the end %d",
			loss, c.trials, c.bad, c.installs, c.marked)
	}
}

// markHost is one host of a trial: its agent, run in its own goroutine, and
// its state directory, which outlives the agent.
type markHost struct {
	name   string
	dir    string
	agent  *puller.Agent
	cancel context.CancelFunc
	done   chan struct{}
}

// markTTL is the trials' lock_ttl. The marks are back within lock_ttl/3 of
// the loss being noticed and the pause lasts lock_ttl: 1.5 s leaves a second
// of margin for a loaded machine.
const markTTL = 1500 * time.Millisecond

func runMarkTrial(t *testing.T, tr markTrial) markOutcome {
	const bad = "1.1-1"
	tb := newTestbed(t) // a real redis-server
	tb.cfg.LockTTL = markTTL
	tb.cfg.LockPoll = 200 * time.Millisecond
	tb.sem = redislock.New(tb.rdb, redislock.Options{TTL: markTTL, PollEvery: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	tb.cfg.Fraction = 1 / float64(tr.hosts) // cap 1, with or without the new host
	tb.members.n.Store(int64(tr.hosts))
	tb.index.publish("1.0-1")
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var hosts []*markHost
	defer func() {
		cancel()
		mu.Lock()
		defer mu.Unlock()
		for _, h := range hosts {
			if h.done != nil {
				<-h.done
			}
		}
	}()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newAgent := func(h *markHost) *puller.Agent {
		steps := tb.fleet.host(h.name)
		cfg := tb.cfg
		cfg.StateDir = h.dir
		marks, err := statedir.OpenMarks(h.dir)
		if err != nil {
			t.Fatal(err)
		}
		a, err := puller.New(cfg, h.name, puller.Deps{
			Apps: []puller.AppDeps{{Index: tb.index, Installer: steps, Restarter: steps, Drainer: steps, Checker: steps}},
			Lock: tb.sem, State: tb.state, Members: tb.members, Publisher: tb.events, Marks: marks,
			Compare: strings.Compare, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	run := func(h *markHost) {
		h.agent = newAgent(h)
		hctx, hcancel := context.WithCancel(ctx)
		h.cancel, h.done = hcancel, make(chan struct{})
		go func() { defer close(h.done); h.agent.Run(hctx) }()
		h.agent.Tick()
	}
	for i := 0; i < tr.hosts; i++ {
		h := &markHost{name: fmt.Sprintf("i-%02d", i), dir: t.TempDir()}
		tb.fleet.installed[h.name] = "1.0-1"
		hosts = append(hosts, h)
		run(h)
	}
	waitFor(t, "every host recorded ok on 1.0-1", func() bool {
		recs, _ := tb.state.Hosts(ctx, "hello", "staging")
		ok := 0
		for _, r := range recs {
			if r.Version == "1.0-1" && r.State == puller.StateOK {
				ok++
			}
		}
		return ok == tr.hosts
	})
	time.Sleep(tb.cfg.LockTTL) // the guard's first pause, armed at the idle checks

	// The halt: the first host to take the slot fails its health check.
	tb.fleet.mu.Lock()
	tb.fleet.bad[bad] = true
	tb.fleet.mu.Unlock()
	tb.index.publish(bad)
	for _, h := range hosts {
		h.agent.Tick()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, _ := tb.state.IsBroken(ctx, "hello", "staging", bad); b != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no broken mark within 20s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(tr.delay)
	switch tr.loss {
	case "flushall":
		if err := tb.rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	case "restart":
		tb.redis.Restart()
	}
	lost := time.Now()

	// After the loss: a new host joins and an agent restarts.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		time.Sleep(tr.joinAt)
		h := &markHost{name: "i-new", dir: t.TempDir()}
		tb.members.n.Add(1)
		if tr.join == "bootstrap" {
			_ = newAgent(h).Bootstrap(ctx) // may fail; what it installed is what counts
		} else {
			tb.fleet.mu.Lock()
			tb.fleet.installed[h.name] = "1.0-1"
			tb.fleet.mu.Unlock()
		}
		mu.Lock()
		defer mu.Unlock()
		hosts = append(hosts, h)
		run(h)
	}()
	go func() {
		defer wg.Done()
		time.Sleep(tr.restartAt)
		mu.Lock()
		defer mu.Unlock()
		h := hosts[tr.restart]
		h.cancel()
		<-h.done
		run(h)
	}()
	wg.Wait()
	// Every host checks again a few times over the next leases.
	for i := 0; i < 3; i++ {
		time.Sleep(tb.cfg.LockTTL)
		mu.Lock()
		for _, h := range hosts {
			h.agent.Tick()
		}
		mu.Unlock()
	}
	time.Sleep(2 * tb.cfg.LockTTL)
	var out markOutcome
	for _, in := range tb.fleet.installsOf(bad) {
		if in.at.After(lost) {
			out.installs++
			out.who = append(out.who, fmt.Sprintf("%s +%s", in.host, in.at.Sub(lost).Round(time.Millisecond)))
		}
	}
	b, _ := tb.state.IsBroken(ctx, "hello", "staging", bad)
	out.marked = b != nil
	return out
}

// markAgent is an agent of tb remembering marks in dir.
func markAgent(t *testing.T, tb *testbed, host, dir string) *puller.Agent {
	t.Helper()
	marks, err := statedir.OpenMarks(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps := tb.fleet.host(host)
	cfg := tb.cfg
	cfg.StateDir = dir
	a, err := puller.New(cfg, host, puller.Deps{
		Apps: []puller.AppDeps{{Index: tb.index, Installer: steps, Restarter: steps, Drainer: steps, Checker: steps}},
		Lock: tb.sem, State: tb.state, Members: tb.members, Publisher: tb.events, Marks: marks,
		Compare: strings.Compare, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestUnbreakIsNotUndoneByDataLoss: a mark an operator removed while Redis
// kept its data is forgotten by the host that remembered it, so a later
// FLUSHALL does not bring it back; a mark nobody removed comes back.
func TestUnbreakIsNotUndoneByDataLoss(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.fleet.installed["i-1"] = "1.0-1"
	tb.fleet.bad["1.1-1"], tb.fleet.bad["1.2-1"] = true, true
	tb.index.publish("1.0-1")
	dir := t.TempDir()
	a := markAgent(t, tb, "i-1", dir)
	ctx := context.Background()
	for _, v := range []string{"1.1-1", "1.2-1"} {
		tb.index.publish(v)
		if err := a.Once(ctx); !errors.Is(err, puller.ErrDeployFailed) {
			t.Fatalf("deploy of %s: %v, want it to fail", v, err)
		}
	}
	mem, _ := statedir.OpenMarks(dir)
	if got, err := mem.Marks("hello/staging"); err != nil || len(got) != 2 {
		t.Fatalf("remembered %v, %v; want the two marks this host set", got, err)
	}
	if err := tb.rdb.HDel(ctx, "aptfleet:hello:staging:broken", "1.1-1").Err(); err != nil { // the operator's unbreak
		t.Fatal(err)
	}
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := mem.Marks("hello/staging"); len(got) != 1 || got["1.2-1"].Reason == "" {
		t.Fatalf("after the unbreak the host remembers %v, want only 1.2-1", got)
	}
	if err := tb.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := tb.state.Broken(ctx, "hello", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if _, back := got["1.1-1"]; back {
		t.Error("the unbroken 1.1-1 came back after FLUSHALL")
	}
	if b := got["1.2-1"]; b.Host != "i-1" || !strings.Contains(b.Reason, "503") {
		t.Errorf("1.2-1 after FLUSHALL: %+v, want the mark put back as it was", b)
	}
}

// TestCorruptMarksFileStopsDeploys: a marks file that does not decode is an
// error naming it; no deploy starts until the operator clears it.
func TestCorruptMarksFileStopsDeploys(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.fleet.installed["i-1"] = "1.0-1"
	tb.index.publish("1.0-1")
	tb.index.publish("1.1-1")
	dir := t.TempDir()
	path := dir + "/marks.json"
	if err := os.WriteFile(path, []byte(`{"hello/staging": {`), 0o644); err != nil {
		t.Fatal(err)
	}
	a := markAgent(t, tb, "i-1", dir)
	err := a.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, statedir.ErrCorrupt) {
		t.Fatalf("Once with a corrupt %s: %v; want an error naming it", path, err)
	}
	if got := tb.fleet.installsOf("1.1-1"); len(got) != 0 {
		t.Fatalf("installed 1.1-1 with a corrupt marks file: %v", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-1"); v != "1.1-1" {
		t.Fatalf("after the file was removed the host runs %q, want 1.1-1", v)
	}
}
