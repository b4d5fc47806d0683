package puller_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/fleetview"
)

// yank takes versions out of the in-memory index, as a rollback or yank
// does to the signed one.
func (m *memIndex) yank(versions ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.versions = slices.DeleteFunc(m.versions, func(v string) bool { return slices.Contains(versions, v) })
	m.etag++
}

// TestHistoryTellsEveryRollout runs agents with the real state store through
// a first boot, a rollout that a new instance boots into, a second rollout,
// a failed release and a rollback, and reads the history back as `fleet
// history` does: every rollout with its outcome and actor, the first boot
// none, each host's outcome with its step durations.
func TestHistoryTellsEveryRollout(t *testing.T) {
	tb := newTestbed(t)
	tb.fleet.installD = 20 * time.Millisecond
	tb.index.validUntil = time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second)
	ctx := context.Background()
	hosts := []string{"i-1", "i-2", "i-3"}
	agents := map[string]*puller.Agent{}
	for _, h := range hosts {
		agents[h] = tb.agent(h, nil)
	}
	once := func(hs ...string) {
		t.Helper()
		for _, h := range hs {
			if err := agents[h].Once(ctx); err != nil && !strings.Contains(err.Error(), "deploy failed") {
				t.Fatalf("%s: %v", h, err)
			}
		}
	}
	promote := func(v, actor string) {
		e := event.New(event.Promoted, "hello", "staging", v, "", time.Now())
		e.Actor, e.From = actor, "ci"
		if err := tb.state.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	// First boot of three instances: no rollout.
	tb.index.publish("1.0-1")
	tb.members.n.Store(3)
	for _, h := range hosts {
		if err := agents[h].Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 1.1-1; a fourth instance boots while it rolls out, then joins Serf.
	tb.index.publish("1.1-1")
	promote("1.1-1", "alice")
	once("i-1")
	agents["i-4"] = tb.agent("i-4", nil)
	if err := agents["i-4"].Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	tb.members.n.Store(4)
	hosts = append(hosts, "i-4")
	once("i-2", "i-3")
	if r, _ := tb.state.Rollout(ctx, "hello", "staging", "1.1-1"); r.Finished.IsZero() || r.Done != r.Total {
		t.Errorf("rollout of 1.1-1 after every host took it: %+v, want finished with every host counted", r)
	}
	// 1.2-1 rolls out; 1.3-1 fails its health check.
	tb.index.publish("1.2-1")
	promote("1.2-1", "alice")
	once(hosts...)
	tb.fleet.mu.Lock()
	tb.fleet.bad["1.3-1"] = true
	tb.fleet.mu.Unlock()
	tb.index.publish("1.3-1")
	promote("1.3-1", "carol")
	once(hosts...)
	halted := 0.0
	for _, a := range agents {
		halted = max(halted, gauge(t, a, "aptfleet_puller_rollout_halted"))
	}
	if halted != 1 {
		t.Errorf("aptfleet_puller_rollout_halted after 1.3-1 was marked broken: %v, want 1", halted)
	}
	// bob rolls back to 1.1-1: every host steps down.
	tb.index.yank("1.2-1", "1.3-1")
	rb := event.New(event.Rollback, "hello", "staging", "1.1-1", "", time.Now())
	rb.Actor, rb.Removed, rb.Reason = "bob", "1.3-1,1.2-1", "checkout errors"
	if err := tb.state.Record(ctx, rb); err != nil {
		t.Fatal(err)
	}
	once(hosts...)
	for _, h := range hosts {
		if v := tb.fleet.versionOf(h); v != "1.1-1" {
			t.Errorf("%s runs %s after the rollback, want 1.1-1", h, v)
		}
	}

	entries, err := tb.state.History(ctx, "hello", "staging", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range fleetview.Rollouts(entries) {
		got = append(got, fmt.Sprintf("%s %s by %s via %s, %d hosts", p.Version, p.Outcome, p.Actor, p.From, len(p.Hosts)))
	}
	want := []string{
		"1.1-1 done by alice via ci, 4 hosts",
		"1.2-1 rolled back by bob by alice via ci, 4 hosts",
		"1.3-1 halted by carol via ci, 2 hosts", // i-1 failed, then rolled back
		"1.1-1 done by bob via rollback, 4 hosts",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rollouts in the history:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	var text strings.Builder
	fleetview.HistoryText(&text, "hello", "staging", entries, 0)
	t.Logf("fleet history:\n%s", text.String())

	// Every succeeded event carries its steps; the histogram has them.
	for _, e := range tb.events.of(event.Succeeded) {
		s := e.Steps
		if s.Install < 0.02 || s.Restart <= 0 || s.Health <= 0 {
			t.Errorf("succeeded event of %s %s: steps %+v, want install >= 0.02s, restart and health > 0", e.Host, e.Version, s)
		}
		bootstrap := e.Version == "1.0-1" || e.Host == "i-4" && e.Version == "1.1-1"
		if !bootstrap && (s.Drain <= 0 || s.Restore <= 0) {
			t.Errorf("succeeded event of %s %s: steps %+v, want drain and restore > 0", e.Host, e.Version, s)
		}
	}
	for _, e := range tb.events.of(event.RolledBack) {
		if e.Steps.Install < 0.02 || e.Steps.Restore <= 0 {
			t.Errorf("rolled_back event: steps %+v, want the rollback's install and restore", e.Steps)
		}
	}
	if n := histogramCount(t, agents["i-1"], "aptfleet_puller_step_duration_seconds", "install"); n < 5 {
		t.Errorf("i-1's install step observed %d times, want >= 5 (4 deploys and a rollback)", n)
	}
	if halted := gauge(t, agents["i-1"], "aptfleet_puller_rollout_halted"); halted != 0 {
		t.Errorf("aptfleet_puller_rollout_halted after the rollback: %v, want 0", halted)
	}
	if v := gauge(t, agents["i-1"], "aptfleet_puller_index_valid_until_timestamp_seconds"); v != float64(tb.index.validUntil.Unix()) {
		t.Errorf("aptfleet_puller_index_valid_until_timestamp_seconds = %v, want %d", v, tb.index.validUntil.Unix())
	}
	// Every metric an alert rule uses has data in a real agent.
	rules, err := os.ReadFile("../deploy/prometheus/aptfleet.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range regexp.MustCompile(`aptfleet_puller_[a-z_]+`).FindAllString(string(rules), -1) {
		if !seen[name] && samples(t, agents["i-1"], name) == 0 {
			t.Errorf("the rules use %s, which an agent that deployed has no sample of", name)
		}
		seen[name] = true
	}
}

// gathered returns the agent's metric family name, or nil.
func gathered(t *testing.T, a *puller.Agent, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := a.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// samples is how many series of name the agent serves.
func samples(t *testing.T, a *puller.Agent, name string) int {
	t.Helper()
	if f := gathered(t, a, name); f != nil {
		return len(f.GetMetric())
	}
	return 0
}

// gauge is the value of the agent's one series of gauge name (0 if none).
func gauge(t *testing.T, a *puller.Agent, name string) float64 {
	t.Helper()
	if f := gathered(t, a, name); f != nil && len(f.GetMetric()) > 0 {
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	return 0
}

// histogramCount is the sample count of histogram name's series whose step
// label is step.
func histogramCount(t *testing.T, a *puller.Agent, name, step string) uint64 {
	t.Helper()
	f := gathered(t, a, name)
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "step" && l.GetValue() == step {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}
