//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
)

// The operator's part of the run: the live view served during it, a pause in
// the middle of a rollout, a rollback of a completed release, the history.

// The actor CI's commands run as (Jenkins's variables) and the operator's.
const (
	ciUser   = "ci-bot"
	ciURL    = "https://ci.example.com/job/hello/42/"
	ciActor  = ciUser + " (" + ciURL + ")"
	operator = "alice@bastion"
)

// liveView is `pkgbuild fleet serve` run beside the fleet, as an operator
// would, on the fleet's Redis.
type liveView struct {
	url string
}

// startLiveView serves the live page for the whole run and says where.
func startLiveView(t *testing.T, f *fleet) *liveView {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.CommandContext(f.ctx, f.pkgbuild, "fleet", "serve", "--listen", addr,
		"--redis", "redis://"+f.rds.Addr, "--refresh", "1s", "--live-within", "30s")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lv := &liveView{url: "http://" + addr + "/"}
	for i := 0; ; i++ {
		resp, err := http.Get(lv.url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 100 {
			t.Fatalf("pkgbuild fleet serve did not answer on %s: %v", lv.url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.tl.add("live view: %s (pkgbuild fleet serve; open it in a browser to watch the run)", lv.url)
	return lv
}

// check compares the live view's count of hosts per version with what dpkg
// says on each of hosts (the live instances), once per step.
func (lv *liveView) check(t *testing.T, f *fleet, step string, hosts []string) {
	t.Helper()
	want := map[string]int{}
	for _, h := range hosts {
		v, err := f.installed(h)
		if err != nil {
			t.Errorf("%s: dpkg on %s: %v", step, h, err)
			return
		}
		want[v]++
	}
	// The page polls Redis every second; a host's record follows dpkg
	// within one tick.
	var got map[string]int
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		got, err = lv.counts()
		if err == nil && fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: the live view counts %v hosts per version (%v), dpkg says %v", step, got, err, want)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	resp, err := http.Get(lv.url)
	if err != nil {
		t.Errorf("%s: live page: %v", step, err)
		return
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `id="env-`+app+`-`+env+`"`) {
		t.Errorf("%s: the live page has no section for %s/%s", step, app, env)
	}
	f.tl.add("live view agrees with dpkg: %v", got)
}

// counts reads /fleet.json: live hosts per version of app/env.
func (lv *liveView) counts() (map[string]int, error) {
	resp, err := http.Get(lv.url + "fleet.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct {
		Envs []struct {
			App, Env string
			Versions []struct {
				Version string
				Hosts   int
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, e := range v.Envs {
		if e.App == app && e.Env == env {
			for _, c := range e.Versions {
				out[c.Version] = c.Hosts
			}
		}
	}
	return out, nil
}

// slotOf returns the slot of host name.
func (f *fleet) slotOf(name string) slot {
	for _, s := range f.slots {
		if s.name == name {
			return s
		}
	}
	f.t.Fatalf("no slot %s", name)
	return slot{}
}

// snsFlags are the flags that send a pkgbuild change to the SNS stand-in.
func (f *fleet) snsFlags() []string {
	return []string{"--sns-topic-arn", topicARN, "--sns-endpoint", f.sns.url}
}

// fleetCmd runs `pkgbuild fleet ARGS` as the operator and logs it.
func (f *fleet) fleetCmd(args ...string) string {
	f.t.Helper()
	out := f.run(f.pkgbuild, append(append([]string{"fleet"}, args...), "--redis", "redis://"+f.rds.Addr)...)
	f.tl.add("pkgbuild fleet %s: %s", strings.Join(args, " "), strings.TrimSpace(firstLine(out)))
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// since keeps the events at or after t (a version's second rollout).
func since(evs []event.Deploy, t time.Time) []event.Deploy {
	return slices.DeleteFunc(slices.Clone(evs), func(e event.Deploy) bool { return e.Time.Before(t) })
}

// starts counts the started events of version on hosts other than the
// harness's (deploys, not bootstraps).
func starts(f *fleet, version string) int {
	n := 0
	for _, e := range f.sns.deploys(version) {
		if e.Kind == event.Started {
			n++
		}
	}
	return n
}

// pauseMidRollout pauses the app/env once the first host started version,
// checks that no further host starts for two schedule periods, resumes, and
// waits for the rollout to complete on hosts.
func pauseMidRollout(t *testing.T, f *fleet, version string, hosts []string) {
	t.Helper()
	if _, err := f.sns.waitEvent(f.ctx, event.Started, version, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	f.fleetCmd(append([]string{"pause", app + "/" + env, "--reason", "error rate up, looking", "--actor", operator}, f.snsFlags()...)...)
	// A host in the middle of its deploy finishes it; then nothing moves.
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute)
	defer cancel()
	for {
		recs, err := f.state.Hosts(ctx, app, env)
		busy := false
		for _, h := range hosts {
			s := recs[h].State
			busy = busy || s == puller.StateDeploying || s == puller.StateRollingBack
		}
		if err == nil && !busy {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("a host still deploying %s 2 minutes after the pause", version)
		case <-time.After(200 * time.Millisecond):
		}
	}
	before := starts(f, version)
	f.tl.add("paused: %d host(s) started %s; watching two schedule periods", before, version)
	time.Sleep(25 * time.Second)
	if after := starts(f, version); after != before {
		t.Errorf("%d host(s) started %s while the app/env was paused", after-before, version)
	}
	recs, _ := f.state.Hosts(f.ctx, app, env)
	var held []string
	for _, h := range hosts {
		if recs[h].Version != version {
			held = append(held, h+" "+string(recs[h].State))
		}
	}
	f.tl.add("after two schedule periods paused: no host started %s; behind: %s", version, strings.Join(held, ", "))
	f.fleetCmd(append([]string{"resume", app + "/" + env, "--reason", "unrelated: a database failover", "--actor", operator}, f.snsFlags()...)...)
	if err := f.waitVersion(version, hosts, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// rollback runs `pkgbuild rollback` of the newest version, announced.
func (f *fleet) rollback(announce string) time.Time {
	f.t.Helper()
	args := append(append([]string{"rollback"}, f.repoArgs()...), "--dist", env, app, "--reason", "checkout errors",
		"--actor", operator, "--announce", announce, "--announce-key-file", f.serfFile, "--redis", "redis://"+f.rds.Addr)
	at := time.Now()
	out := f.run(f.pkgbuild, append(args, f.snsFlags()...)...)
	f.tl.add("pkgbuild rollback --dist %s %s: %s", env, app, strings.ReplaceAll(strings.TrimSpace(out), "\n", "; "))
	return at
}

// checkHistory runs `pkgbuild fleet history` and finds each rollout with
// its outcome and actor.
func checkHistory(t *testing.T, f *fleet, out io.Writer, want [][3]string) {
	t.Helper()
	h := f.fleetCmd("history", app+"/"+env, "--limit", "0")
	fmt.Fprintln(out, h)
	for _, w := range want {
		found := false
		for _, l := range strings.Split(h, "\n") {
			fs := strings.Fields(l)
			if len(fs) > 0 && fs[0] == w[0] && strings.Contains(l, w[1]) && strings.Contains(l, w[2]) {
				found = true
			}
		}
		if !found {
			t.Errorf("fleet history has no rollout of %s with outcome %q by %q:\n%s", w[0], w[1], w[2], h)
		}
	}
}

// stepRow is one rollout's mean step durations.
type stepRow struct {
	version string
	hosts   int
	steps   event.Steps
	perHost float64
}

// stepBreakdown averages the succeeded events' steps of hosts that drained
// (deploys, not bootstraps).
func stepBreakdown(version string, evs []event.Deploy) stepRow {
	r := stepRow{version: version}
	for _, e := range evs {
		if e.Kind != event.Succeeded || e.Steps.Drain == 0 {
			continue
		}
		r.hosts++
		for _, n := range event.StepNames {
			r.steps.Add(n, e.Steps.Of(n))
		}
		r.perHost += e.DurationSeconds
	}
	if r.hosts > 0 {
		var mean event.Steps
		for _, n := range event.StepNames {
			mean.Add(n, r.steps.Of(n)/float64(r.hosts))
		}
		r.steps, r.perHost = mean, r.perHost/float64(r.hosts)
	}
	return r
}

// printSteps prints the per-host step breakdown and the overhead beyond the
// waits the configuration sets: the drain (as long as HAProxy took to
// drain the server) and the health check's interval x (consecutive - 1).
// The health check's settings are read from an instance's puller.yaml.
func printSteps(w io.Writer, f *fleet, on string, rows []stepRow) {
	waits := 0.0
	if raw, err := f.instance(on).ReadFile(f.ctx, "/etc/aptfleet/puller.yaml"); err != nil {
		fmt.Fprintf(w, "read puller.yaml on %s: %v\n", on, err)
	} else if cfg, err := puller.ParseConfig("puller.yaml", bytes.NewReader(raw)); err != nil {
		fmt.Fprintf(w, "parse puller.yaml of %s: %v\n", on, err)
	} else if len(cfg.Apps) > 0 {
		hc := cfg.Apps[0].Health
		waits = hc.Interval.Seconds() * float64(hc.Consecutive-1)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "rollout\thosts\tdrain\tinstall\trestart\tvalidate\thealth\trestore\tper host\toverhead (per host - drain - %.0fs health wait)\t\n", waits)
	for _, r := range rows {
		if r.hosts == 0 {
			continue
		}
		s := r.steps
		fmt.Fprintf(tw, "%s\t%d\t%.2fs\t%.2fs\t%.2fs\t%.2fs\t%.2fs\t%.2fs\t%.2fs\t%.2fs\t\n", r.version, r.hosts,
			s.Drain, s.Install, s.Restart, s.Validate, s.Health, s.Restore, r.perHost, r.perHost-s.Drain-waits)
	}
	tw.Flush()
}
