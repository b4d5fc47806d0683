package puller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv/awsstub"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/cloudwatch"
	"github.com/aptfleet/aptfleet/puller/redislock"
)

// set moves the injected clock (trust_test.go) to t.
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func utcTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gatedAgent is an agent of the testbed with the canary store, on an
// injected clock (nil: the real one).
func (tb *testbed) gatedAgent(host string, c *clock) *puller.Agent {
	tb.t.Helper()
	var now func() time.Time
	if c != nil {
		now = c.Now
	}
	steps := tb.fleet.host(host)
	a, err := puller.New(tb.cfg, host, puller.Deps{
		Apps: []puller.AppDeps{{Index: tb.index, Installer: steps, Restarter: steps, Drainer: steps, Checker: steps}},
		Lock: tb.sem, State: tb.state, Canaries: tb.state, Members: tb.members, Publisher: tb.events,
		Compare: strings.Compare, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now,
	})
	if err != nil {
		tb.t.Fatal(err)
	}
	return a
}

// The deploy window on an injected clock, across the spring DST change in
// Berlin: a version published on Friday after 17:00 CET waits over the
// weekend (held, visibly, with when the window opens) and starts on Monday
// at 08:00 CEST, which is 06:00 UTC where Friday's 08:00 was 07:00 UTC. A
// new instance's bootstrap installs it meanwhile.
func TestWindowHoldsAcrossDST(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(3)
	tb.cfg.Apps[0].Window = "Mon-Fri 08:00-17:00 Europe/Berlin"
	ctx := context.Background()
	c := &clock{}
	c.set(utcTime(t, "2026-03-27 10:00")) // Friday 11:00 CET: open
	tb.index.publish("1.1-1")
	a := tb.gatedAgent("i-0", c)
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-0"); v != "1.1-1" {
		t.Fatalf("inside the window: host runs %q, want 1.1-1", v)
	}

	tb.index.publish("1.2-1")
	for _, at := range []string{
		"2026-03-27 16:00", // Friday 17:00 CET: shut
		"2026-03-28 12:00", // Saturday
		"2026-03-30 05:59", // Monday 07:59 CEST (it would be 06:59 CET: open, were it winter)
	} {
		c.set(utcTime(t, at))
		if err := a.Once(ctx); err != nil {
			t.Fatalf("%s: %v", at, err)
		}
		if v := tb.fleet.versionOf("i-0"); v != "1.1-1" {
			t.Fatalf("%s UTC, outside the window: host moved to %s", at, v)
		}
		st, err := tb.state.Status(ctx, "hello", "staging", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := tb.state.Hosts(ctx, "hello", "staging")
		h := rec["i-0"]
		if h.State != puller.StateHeld || h.Target != "1.2-1" || !strings.Contains(h.Reason, "outside window") ||
			!strings.Contains(h.Reason, "2026-03-30T06:00:00Z") {
			t.Fatalf("%s UTC: record %+v (status %+v), want held for 1.2-1 outside the window until Monday 06:00 UTC", at, h, st)
		}
	}
	// A new instance boots while the window is shut: bootstrap installs.
	b := tb.gatedAgent("i-new", c)
	if err := b.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-new"); v != "1.2-1" {
		t.Errorf("bootstrap outside the window installed %q, want 1.2-1", v)
	}

	c.set(utcTime(t, "2026-03-30 06:00")) // Monday 08:00 CEST
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-0"); v != "1.2-1" {
		t.Fatalf("at the window's opening host runs %q, want 1.2-1", v)
	}
}

// A host waiting for a slot when the window shuts gives the wait up: no
// deploy starts after the window's end.
func TestWindowShutsWhileWaiting(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(3) // cap 1
	tb.cfg.Apps[0].Window = "daily 08:00-17:00 UTC"
	tb.cfg.LockPoll = 20 * time.Millisecond
	ctx := context.Background()
	c := &clock{}
	c.set(utcTime(t, "2026-03-27 16:58"))
	tb.index.publish("1.1-1")
	a := tb.gatedAgent("i-0", c)
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	tb.index.publish("1.2-1")
	other, err := tb.sem.TryAcquire(ctx, redislock.Request{Key: "hello:staging", Host: "i-other", Cap: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Once(ctx) }()
	time.Sleep(300 * time.Millisecond) // waiting for the slot
	c.set(utcTime(t, "2026-03-27 17:00"))
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("cycle: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting host still waits for a slot after the window shut")
	}
	other.Release(ctx)
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-0"); v != "1.1-1" {
		t.Fatalf("host moved to %s after the window shut", v)
	}
	if len(tb.events.of(event.Started)) != 1 {
		t.Errorf("started events %d, want only 1.1-1's", len(tb.events.of(event.Started)))
	}
}

// Alarms through the real SDK, against the SigV4-checking CloudWatch
// stand-in, shared through Redis: an alarm in ALARM when a host is admitted
// halts the rollout as a release failure (branded with the alarm's name and
// reason, halted) before the host changes anything; hosts already on the
// version stay on it.
func TestAlarmHaltsRollout(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(3)
	tb.cfg.Apps[0].Alarms = []string{"hello-5xx-high", "hello-p99-latency"}
	cw := awsstub.NewCloudWatch(t, "eu-west-1", "AKIDTEST", "s3cr3t")
	cw.SetAlarm("hello-5xx-high", "OK", "", false)
	cw.SetAlarm("hello-p99-latency", "OK", "", false)
	awsCfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "s3cr3t", "")}
	agent := func(host string) *puller.Agent {
		steps := tb.fleet.host(host)
		shared, err := cloudwatch.NewShared(tb.rdb, cloudwatch.New(awsCfg, cw.URL), cloudwatch.SharedOptions{
			App: "hello", Env: "staging", Host: host, Every: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		a, err := puller.New(tb.cfg, host, puller.Deps{
			Apps: []puller.AppDeps{{Index: tb.index, Installer: steps, Restarter: steps, Drainer: steps, Checker: steps, AlarmReader: shared}},
			Lock: tb.sem, State: tb.state, Members: tb.members, Publisher: tb.events,
			Compare: strings.Compare, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ctx := context.Background()
	tb.index.publish("1.1-1")
	a, b := agent("i-0"), agent("i-1")
	for _, x := range []*puller.Agent{a, b} {
		if err := x.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tb.index.publish("1.2-1")
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	cw.SetAlarm("hello-p99-latency", "ALARM", "Threshold Crossed: 3 datapoints were greater than 0.8", false)
	time.Sleep(100 * time.Millisecond) // past the shared answer's interval
	err := b.Once(ctx)
	if !errors.Is(err, puller.ErrDeployFailed) {
		t.Fatalf("deploy under an alarm: %v, want a release failure", err)
	}
	bm, _ := tb.state.IsBroken(ctx, "hello", "staging", "1.2-1")
	if bm == nil || !strings.Contains(bm.Reason, "alarm hello-p99-latency in ALARM: Threshold Crossed") {
		t.Fatalf("broken mark %+v, want the alarm's name and reason", bm)
	}
	if got := tb.fleet.installsOf("1.2-1"); len(got) != 1 || got[0].host != "i-0" {
		t.Errorf("installs of 1.2-1: %+v, want only i-0's, made before the alarm", got)
	}
	if v := tb.fleet.versionOf("i-0"); v != "1.2-1" {
		t.Errorf("i-0, already on 1.2-1, was moved to %s", v)
	}
	if len(tb.events.of(event.Halted)) != 1 {
		t.Errorf("halted events: %d, want 1", len(tb.events.of(event.Halted)))
	}
	// The operator yanks 1.2-1 while the alarm still fires: i-0 steps down
	// to 1.1-1, and the alarm brands nothing the fleet goes back to.
	tb.index.mu.Lock()
	tb.index.versions = []string{"1.1-1"}
	tb.index.etag++
	tb.index.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	if err := a.Once(ctx); err != nil {
		t.Fatalf("step down under a firing alarm: %v", err)
	}
	if v := tb.fleet.versionOf("i-0"); v != "1.1-1" {
		t.Errorf("i-0 runs %s after the yank, want 1.1-1", v)
	}
	if bm, _ := tb.state.IsBroken(ctx, "hello", "staging", "1.1-1"); bm != nil {
		t.Errorf("the alarm branded 1.1-1, the version the fleet steps down to: %+v", bm)
	}
	if r := cw.Rejected(); len(r) != 0 {
		t.Errorf("the stand-in rejected requests: %v", r)
	}
}

// runAgents starts gated agents on the real clock, each on version v, and
// stops them when the test ends.
func (tb *testbed) runAgents(v string, hosts ...string) []*puller.Agent {
	tb.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tb.t.Cleanup(func() { cancel(); wg.Wait() })
	var out []*puller.Agent
	for _, h := range hosts {
		tb.fleet.mu.Lock()
		tb.fleet.installed[h] = v
		tb.fleet.mu.Unlock()
		a := tb.gatedAgent(h, nil)
		if err := a.Once(ctx); err != nil {
			tb.t.Fatal(err)
		}
		out = append(out, a)
		wg.Go(func() { a.Run(ctx) })
	}
	return out
}

func (tb *testbed) onVersion(v string) (hosts []string) {
	tb.fleet.mu.Lock()
	defer tb.fleet.mu.Unlock()
	for h, x := range tb.fleet.installed {
		if x == v {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// Manual promotion: the canary bakes, passes and waits in
// awaiting_promotion; the others are held, visibly, and start only when an
// operator promotes, woken through Pub/Sub (their schedule is an hour).
func TestCanaryManualPromotion(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(3)
	tb.cfg.Apps[0].Canary = puller.Canary{Hosts: 1, Bake: 300 * time.Millisecond, Promote: puller.PromoteManual}
	ctx := context.Background()
	tb.index.publish("1.0-1")
	agents := tb.runAgents("1.0-1", "i-0", "i-1", "i-2")
	tb.index.publish("1.1-1")
	for _, a := range agents {
		a.Notify("hello", "staging")
	}
	waitFor(t, "canary_awaiting", func() bool { return len(tb.events.of(event.CanaryAwaiting)) == 1 })
	canary := tb.events.of(event.CanaryAwaiting)[0].Host
	waitFor(t, "the others held", func() bool {
		recs, _ := tb.state.Hosts(ctx, "hello", "staging")
		held := 0
		for h, r := range recs {
			switch {
			case h == canary && r.State != puller.StateAwaiting:
				return false
			case h != canary && r.State == puller.StateHeld && strings.Contains(r.Reason, "await promotion"):
				held++
			}
		}
		return held == 2
	})
	time.Sleep(500 * time.Millisecond)
	if on := tb.onVersion("1.1-1"); len(on) != 1 || on[0] != canary {
		t.Fatalf("on 1.1-1 while awaiting promotion: %v, want only the canary %s", on, canary)
	}
	raw, _ := tb.state.ReadRaw(ctx, "hello", "staging")
	if st := raw.Rollouts["1.1-1"]["stage"]; st != "awaiting promotion" {
		t.Errorf("rollout stage %q, want awaiting promotion", st)
	}
	for i, a := range agents {
		host := fmt.Sprintf("i-%d", i)
		want := map[string]float64{`aptfleet_puller_held{kind="waiting for canary"}`: 1, `aptfleet_puller_canary{stage="awaiting_promotion"}`: 0}
		if host == canary {
			want = map[string]float64{`aptfleet_puller_held{kind="waiting for canary"}`: 0, `aptfleet_puller_canary{stage="awaiting_promotion"}`: 1}
		}
		for m, v := range want {
			if got := labelledGauge(t, a, m); got != v {
				t.Errorf("%s: %s = %v, want %v", host, m, got, v)
			}
		}
	}
	ev := event.New(event.CanaryPromoted, "hello", "staging", "1.1-1", "", time.Now())
	ev.Actor = "jane@bastion"
	if _, err := tb.state.Promote(ctx, "hello", "staging", "1.1-1", ev); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every host on 1.1-1", func() bool { return len(tb.onVersion("1.1-1")) == 3 })
	waitFor(t, "the canary's record ok", func() bool {
		recs, _ := tb.state.Hosts(ctx, "hello", "staging")
		return recs[canary].State == puller.StateOK
	})
}

// A canary that dies loses its place when its lease lapses, and a waiting
// host takes it, found by the waiters' cheap reads (no script while they
// wait): the stage goes on with the replacement.
func TestCanaryReplacedWhenItDies(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(3)
	tb.cfg.Apps[0].Canary = puller.Canary{Hosts: 1, Bake: 200 * time.Millisecond, Promote: puller.PromoteAuto}
	ctx := context.Background()
	tb.index.publish("1.0-1")
	agents := tb.runAgents("1.0-1", "i-0", "i-1", "i-2")
	// i-dead took the only place and died: it never renews.
	if v, err := tb.state.Join(ctx, "hello", "staging", "1.1-1", "i-dead", "", 1, tb.cfg.LockTTL); err != nil || !v.Canary {
		t.Fatalf("Join of i-dead: %+v, %v", v, err)
	}
	tb.index.publish("1.1-1")
	for _, a := range agents {
		a.Notify("hello", "staging")
	}
	waitFor(t, "every host on 1.1-1", func() bool { return len(tb.onVersion("1.1-1")) == 3 })
	started := tb.events.of(event.CanaryStarted)
	passed := tb.events.of(event.CanaryPassed)
	if len(started) != 1 || len(passed) != 1 || passed[0].Host != started[0].Host {
		t.Fatalf("canary_started %+v, canary_passed %+v: want one replacement canary that passed", started, passed)
	}
	for _, e := range tb.events.of(event.Started) {
		if e.Host != started[0].Host && e.Time.Before(passed[0].Time) {
			t.Errorf("%s started before the replacement canary passed", e.Host)
		}
	}
}

// labelledGauge reads one gauge of an agent's metrics, named as
// name{label="value"} (-1 when there is no such series).
func labelledGauge(t *testing.T, a *puller.Agent, metric string) float64 {
	t.Helper()
	name, label, _ := strings.Cut(strings.TrimSuffix(metric, "}"), "{")
	key, value, _ := strings.Cut(label, "=")
	value = strings.Trim(value, `"`)
	if f := gathered(t, a, name); f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == key && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
