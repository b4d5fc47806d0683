//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aptfleet/aptfleet/internal/event"
)

// The versions the scenario ships. v3 starts but fails its health check.
const (
	v1 = "1.0.0-1"
	v2 = "1.1.0-1"
	v3 = "1.2.0-1"
	v4 = "1.3.0-1"
	v5 = "1.4.0-1"
	v6 = "1.5.0-1"
	v7 = "1.6.0-1"
)

// TestFleet is the product's end-to-end proof: publish, promote and roll
// hello across instances booted from user-data, behind HAProxy under steady
// load, through a failed release, a scale-out during a rollout and an
// instance killed while it holds the deploy lock.
func TestFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	out := io.Writer(os.Stdout)
	tl := newTimeline(out)
	f := newFleet(t, ctx, 4, tl)
	lv := startLiveView(t, f)
	fmt.Fprintf(out, "\n== the live view of the fleet: %s\n   (pkgbuild fleet serve; open it in a browser to watch the run)\n", lv.url)
	i1, i2, i3, i4 := f.slots[0], f.slots[1], f.slots[2], f.slots[3]
	first3 := []string{i1.name, i2.name, i3.name}
	var rep report
	rep.fraction = fraction

	step := func(n int, what, why string) {
		fmt.Fprintf(out, "\n== step %d: %s\n   %s\n", n, what, why)
		tl.add("step %d: %s", n, what)
	}
	failedBefore := func() int { _, n := f.load.counts(); return n }
	// requestsOK fails the test when requests failed during a step.
	requestsOK := func(step string, before int) {
		if n := failedBefore() - before; n != 0 {
			t.Errorf("%s: %d requests failed through the load balancer, want 0", step, n)
		}
	}

	// --- 1: v1 to production, three instances boot from user-data.
	step(1, "publish hello "+v1+" and the puller to staging, promote to production, boot 3 instances",
		"Each instance runs only its user-data: apt-transport-s3, the keyring and source, the puller's config, then `puller bootstrap`.")
	puller := f.buildPackage("puller", "packaging/puller", "./cmd/puller", "../../bin/puller", pullerVer)
	f.publish(puller, f.hello(v1, 200))
	f.promote("", "puller="+pullerVer, app+"="+v1)
	obs := observe(ctx, f)
	bootAll(t, f, i1, i2, i3)
	if err := f.waitVersion(v1, first3, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, s := range []slot{i1, i2, i3} {
		if err := f.inService(s); err != nil {
			t.Fatal(err)
		}
	}
	rep.instances = 3
	lv.check(t, f, "step 1", first3)
	f.load = startLoad(f.lb.Frontend, 50*time.Millisecond, 60000, tl)
	defer f.load.close()
	tl.add("load: 20 requests/s through haproxy %s from now on", f.lb.Frontend)
	time.Sleep(2 * time.Second)
	restUntilGuardArmed(t, f)

	// --- 2: v2 rolls one host at a time.
	step(2, "publish and promote "+v2+": a rolling deploy, fraction 1/3",
		"The promote announces a Serf deploy event; cap = max(1, floor(1/3 x 3)) = 1, so one host at a time drains, upgrades, checks and comes back.")
	before := failedBefore()
	obs.watch(v2)
	f.publish(f.hello(v2, 200))
	promoted := f.promote(announceAt(i1), app+"="+v2)
	if err := f.waitVersion(v2, first3, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	rep.add(f, obs, v2, promoted, rowOpts{note: "the fleet's first rollout"})
	requestsOK("step 2", before)
	lv.check(t, f, "step 2", first3)

	// --- 3: v3 fails its health check on the first host, which rolls back
	// and halts the rollout.
	step(3, "publish and promote "+v3+", which fails its health check",
		"The first host to take the slot rolls back, marks "+v3+" broken in Redis and halts the rollout: no other host installs it.")
	before = failedBefore()
	obs.watch(v3)
	f.publish(f.hello(v3, 503))
	promoted = f.promote(announceAt(i1), app+"="+v3)
	halted, err := f.sns.waitEvent(ctx, event.Halted, v3, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := f.state.IsBroken(ctx, app, env, v3); err != nil || b == nil || b.Host != halted.Host {
		t.Fatalf("broken mark of %s: %+v, %v; want one set by %s", v3, b, err, halted.Host)
	}
	if err := f.waitVersion(v2, first3, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	// Two more schedule periods: nobody else tries v3 at a later tick.
	time.Sleep(25 * time.Second)
	var tried []string
	for _, h := range first3 {
		seen, err := f.everInstalled(h)
		if err != nil {
			t.Fatal(err)
		}
		if seen[v3] {
			tried = append(tried, h)
		}
	}
	if len(tried) != 1 || tried[0] != halted.Host {
		t.Errorf("hosts that installed %s: %v, want only %s (the first wave)", v3, tried, halted.Host)
	}
	if !slackSays(f, "halted", v3) {
		t.Errorf("no Slack message says the %s rollout halted; got %q", v3, f.sns.slackTexts())
	}
	rep.add(f, obs, v3, promoted, rowOpts{note: "health check failed: rolled back, marked broken, halted"})
	requestsOK("step 3", before)
	lv.check(t, f, "step 3", first3)

	// --- 4: a fourth instance boots while v4 rolls out.
	step(4, "publish and promote "+v4+"; a 4th instance boots during the rollout",
		"A new instance installs the newest good version on first boot and joins the gossip; the cap is recomputed at every attempt.")
	before = failedBefore()
	obs.watch(v4)
	f.publish(f.hello(v4, 200))
	promoted = f.promote(announceAt(i1), app+"="+v4)
	if _, err := f.sns.waitEvent(ctx, event.Started, v4, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	tl.add("auto scaling: capacity 3 -> 4 while %s rolls out", v4)
	if _, err := f.boot(i4); err != nil {
		t.Fatal(err)
	}
	if err := f.inService(i4); err != nil {
		t.Fatal(err)
	}
	rep.instances++
	all4 := append(first3, i4.name)
	if err := f.waitVersion(v4, all4, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	rep.add(f, obs, v4, promoted, rowOpts{bootstrapped: map[string]bool{i4.name: true},
		note: i4.name + " booted during it and bootstrapped (no lock, no traffic yet)"})
	requestsOK("step 4", before)
	lv.check(t, f, "step 4", all4)

	// --- 5: the instance holding the lock is killed; its lease expires and
	// the rollout completes on the others.
	step(5, "publish and promote "+v5+"; kill the instance that holds the deploy lock",
		"The holder dies drained, before it renews its lease: the slot frees when the lease expires and the others carry on.")
	before = failedBefore()
	obs.watch(v5)
	f.publish(f.hello(v5, 200))
	promoted = f.promote(announceAt(i4), app+"="+v5)
	victim, err := waitDrained(ctx, f, v5, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f.instance(victim).Kill()
	killedAt := time.Now()
	tl.add("%s: KILLED (power cut) while holding the deploy slot for %s", victim, v5)
	var rest []string
	for _, h := range all4 {
		if h != victim {
			rest = append(rest, h)
		}
	}
	if err := f.waitVersion(v5, rest, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.slots {
		if s.name == victim {
			if err := f.outOfService(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	tl.add("auto scaling: %s taken out of the load balancer", victim)
	rep.add(f, obs, v5, promoted, rowOpts{cut: map[string]time.Time{victim: killedAt},
		note: victim + " killed holding the slot: its 30s lease expired, then the rest"})
	requestsOK("step 5", before)

	// --- 6: the operator's view.
	step(6, "puller status --fleet",
		"What an operator sees on any instance: every live host on the last version, the dead one gone, no inconsistency.")
	// A live host rewrites its record every tick (10s); the killed one's is
	// older than 30s by now.
	time.Sleep(time.Until(killedAt.Add(35 * time.Second)))
	st, err := f.status(rest[0], 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(out, st)
	if strings.Contains(st, "WARNING") {
		t.Errorf("status --fleet warns of a version inconsistency:\n%s", st)
	}
	for _, h := range rest {
		if !hostLine(st, h, v5, "ok") {
			t.Errorf("status --fleet does not show %s ok on %s:\n%s", h, v5, st)
		}
	}
	if !strings.Contains(st, "rollout "+v5+": 3/4 done, 0 failed, cap 1") || !strings.Contains(st, "done on every live host") {
		t.Errorf("status --fleet does not show the %s rollout done on every live host:\n%s", v5, st)
	}
	if !strings.Contains(lineOf(st, victim), "(gone)") {
		t.Errorf("status --fleet does not show the killed %s as gone:\n%s", victim, st)
	}
	lv.check(t, f, "steps 5 and 6", rest)

	// --- 7: an operator pauses a rollout in its middle, then resumes it.
	step(7, "publish and promote "+v6+"; `pkgbuild fleet pause` once the first host started it, `resume` two schedule periods later",
		"The host in the middle of its deploy finishes it; no other host starts one while the pause holds; resume lets the rollout finish.")
	before = failedBefore()
	obs.watch(v6)
	f.publish(f.hello(v6, 200))
	promoted = f.promote(announceAt(f.slotOf(rest[0])), app+"="+v6)
	pauseMidRollout(t, f, v6, rest)
	rep.add(f, obs, v6, promoted, rowOpts{note: "paused after its first host for two schedule periods, then resumed"})
	requestsOK("step 7", before)
	lv.check(t, f, "step 7", rest)

	// --- 8: the one-command rollback of the completed release.
	step(8, "pkgbuild rollback: take "+v6+" out of production",
		"A signed index change: every host steps down to "+v5+" one slot at a time, drained, health-checked, restored.")
	before = failedBefore()
	obs.watch("rollback to " + v5)
	rolledBack := f.rollback(announceAt(f.slotOf(rest[0])))
	if err := f.waitVersion(v5, rest, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	rep.addSince(f, obs, v5, rolledBack, rowOpts{watched: "rollback to " + v5, note: "pkgbuild rollback of " + v6 + ": every host back, one at a time"})
	requestsOK("step 8", before)
	lv.check(t, f, "step 8", rest)

	// --- 9: the history an operator reads.
	step(9, "pkgbuild fleet history",
		"Every rollout of the run, with how it ended and who started it.")
	checkHistory(t, f, out, [][3]string{
		{v2, "done", ciActor}, {v3, "halted", ciActor}, {v4, "done", ciActor},
		{v5, "superseded", ciActor}, {v6, "rolled back by " + operator, ciActor}, {v5, "done", operator + " (rollback)"},
	})
	for _, says := range [][]string{{"promoted", v6}, {"paused by", operator}, {"resumed by", operator}, {"rolled back to", v5}, {"halted", v3}} {
		if !slackSays(f, says...) {
			t.Errorf("no Slack message says %q; got %q", says, f.sns.slackTexts())
		}
	}

	// --- 10: a host whose own configuration is broken takes part in a
	// rollout: its fault quarantines it, not the release.
	broken, others := rest[len(rest)-1], rest[:len(rest)-1]
	step(10, "publish and promote "+v7+" while "+broken+"'s apt source file is missing",
		"A host's own fault quarantines that host, not the release: it fails, says host_failed, and the rollout completes on every other host with no broken mark.")
	before = failedBefore()
	const sources = "/etc/apt/sources.list.d/aptfleet.sources"
	if out, err := f.instance(broken).Run(ctx, "mv", sources, sources+".away"); err != nil {
		t.Fatalf("remove %s on %s: %v\n%s", sources, broken, err, out)
	}
	tl.add("%s: its apt source file %s removed (a broken configuration)", broken, sources)
	f.publish(f.hello(v7, 200))
	f.promote(announceAt(f.slotOf(others[0])), app+"="+v7)
	hf, err := f.sns.waitEvent(ctx, event.HostFailed, v7, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if hf.Host != broken {
		t.Errorf("host_failed for %s came from %s, want %s", v7, hf.Host, broken)
	}
	if err := f.waitVersion(v7, others, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := f.installed(broken); err != nil || v != v5 {
		t.Errorf("%s runs %q (%v) after its host fault, want %s still", broken, v, err, v5)
	}
	if marked, err := f.rdb.HExists(ctx, "aptfleet:"+app+":"+env+":broken", v7).Result(); err != nil || marked {
		t.Errorf("%s marked broken after a host fault: %v (%v)", v7, marked, err)
	}
	if !slackSays(f, broken, "own fault", v7) {
		t.Errorf("no Slack message says %s could not deploy %s because of its own fault; got %q", broken, v7, f.sns.slackTexts())
	}
	requestsOK("step 10", before)
	if out, err := f.instance(broken).Run(ctx, "mv", sources+".away", sources); err != nil {
		t.Fatalf("put %s back on %s: %v\n%s", sources, broken, err, out)
	}
	tl.add("%s: host_failed, quarantined on %s; %s took %s; no broken mark", broken, v5, strings.Join(others, ", "), v7)

	f.load.close()
	rep.sent, rep.failed = f.load.counts()
	rep.slack = len(f.sns.slackTexts())
	fmt.Fprintln(out)
	rep.print(out)
	fmt.Fprintln(out)
	var steps []stepRow
	for _, r := range rep.rollouts {
		steps = append(steps, r.steps)
	}
	printSteps(out, f, rest[0], steps)
	for _, r := range rep.rollouts {
		if r.peakEvents > r.cap || r.peakSampled > r.cap {
			t.Errorf("rollout %s: %d deployers at once (events), %d slot holders (sampled), cap %d", r.Version, r.peakEvents, r.peakSampled, r.cap)
		}
	}
	if rep.failed != 0 {
		t.Errorf("%d of %d requests failed, want 0", rep.failed, rep.sent)
	}
}

// restUntilGuardArmed waits out the pause the agents' first checks started
// by arming the semaphore's guard (one lease): a fleet that has run a while
// is past it when its first rollout comes.
func restUntilGuardArmed(t *testing.T, f *fleet) {
	t.Helper()
	key := "aptfleet:" + app + ":" + env + ":guard"
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute)
	defer cancel()
	for {
		until, err := f.rdb.Get(ctx, key).Int64()
		now, err2 := f.rdb.Time(ctx).Result()
		if err == nil && err2 == nil {
			left := time.Duration(until-now.UnixMilli()) * time.Millisecond
			if left <= 0 {
				return
			}
			f.tl.add("fleet at rest: the deploy semaphore's guard, armed at the agents' first check, pauses admissions %s more", left.Round(100*time.Millisecond))
			time.Sleep(left)
			continue
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the agents did not arm the semaphore's guard %s: %v %v", key, err, err2)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// bootAll boots the slots at once and puts nothing in service.
func bootAll(t *testing.T, f *fleet, slots ...slot) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(slots))
	for i, s := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.boot(s)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// announceAt is the Serf address CI announces deploys through.
func announceAt(s slot) string { return fmt.Sprintf("127.0.0.1:%d", s.serfPort) }

// waitDrained waits for a host that started deploying version and whose
// HAProxy server is drained (it holds the slot and takes no traffic), and
// returns it.
func waitDrained(ctx context.Context, f *fleet, version string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		deploying := map[string]bool{}
		for _, e := range f.sns.deploys(version) {
			deploying[e.Host] = e.Kind == event.Started
		}
		recs, err := f.state.Hosts(ctx, app, env)
		st, err2 := f.lbStatus()
		if err == nil && err2 == nil {
			for _, h := range slices.Sorted(maps.Keys(deploying)) {
				if deploying[h] && recs[h].State == "deploying" && st[h] == "DRAIN" {
					return h, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no host drained for %s within %s", version, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// slackSays reports whether a Slack text mentions every word.
func slackSays(f *fleet, words ...string) bool {
	for _, s := range f.sns.slackTexts() {
		l := strings.ToLower(s)
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, strings.ToLower(w))
		}
		if all {
			return true
		}
	}
	return false
}

// lineOf returns the status line of host, or "".
func lineOf(status, host string) string {
	for _, l := range strings.Split(status, "\n") {
		if fs := strings.Fields(l); len(fs) > 0 && fs[0] == host {
			return l
		}
	}
	return ""
}

func hostLine(status, host, version, state string) bool {
	fs := strings.Fields(lineOf(status, host))
	return len(fs) >= 3 && fs[1] == version && fs[2] == state
}

// report is the final table.
type report struct {
	fraction     float64
	instances    int
	sent, failed int
	slack        int
	rollouts     []rolloutRow
}

type rolloutRow struct {
	rolloutFigures
	cap          int
	peakEvents   int
	peakSampled  int
	wall, ideal  time.Duration
	toFirstStart time.Duration
	note         string
	steps        stepRow
}

// rowOpts say what was special about a rollout.
type rowOpts struct {
	cut          map[string]time.Time // hosts killed mid-deploy, and when
	bootstrapped map[string]bool      // hosts that booted during it
	note         string
	watched      string // the observer's label for the rollout, when not its version
}

// add records a finished rollout.
func (r *report) add(f *fleet, o *observer, version string, promoted time.Time, opts rowOpts) {
	r.addSince(f, o, version, time.Time{}, opts)
	if row := &r.rollouts[len(r.rollouts)-1]; !row.First.IsZero() {
		row.toFirstStart = row.First.Sub(promoted)
	}
}

// addSince records a finished rollout from the events since start (a
// version's second rollout, after a rollback).
func (r *report) addSince(f *fleet, o *observer, version string, start time.Time, opts rowOpts) {
	evs := since(f.sns.deploys(version), start)
	promoted := start
	fig := figures(version, evs, opts.cut, opts.bootstrapped)
	ro, _ := f.state.Rollout(f.ctx, app, env, version)
	row := rolloutRow{rolloutFigures: fig, cap: ro.Cap, peakEvents: fig.PeakDeployer, peakSampled: o.peakHolders(cmp.Or(opts.watched, version)), note: opts.note,
		steps: stepBreakdown(version, evs)}
	if !fig.First.IsZero() && !fig.Last.IsZero() {
		row.wall = fig.Last.Sub(fig.First)
	}
	if fig.Succeeded > 0 {
		row.ideal = time.Duration(math.Ceil(1/r.fraction)) * fig.PerHost
	}
	if !fig.First.IsZero() && !promoted.IsZero() {
		row.toFirstStart = fig.First.Sub(promoted)
	}
	r.rollouts = append(r.rollouts, row)
	f.tl.add("rollout %s: %d hosts started, %d succeeded, %d failed, cap %d, %s first start to last end",
		version, fig.Hosts, fig.Succeeded, fig.Failed, ro.Cap, row.wall.Round(100*time.Millisecond))
}

func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rollout\thosts\tok\tfailed\tcap\tpeak deployers (events)\tpeak slot holders (sampled)\tper host\twall\tideal ceil(1/f) x per host\twall / ideal\tpromote -> first start\t  note")
	for _, ro := range r.rollouts {
		ratio := "-"
		if ro.ideal > 0 {
			ratio = fmt.Sprintf("%.2f", ro.wall.Seconds()/ro.ideal.Seconds())
		}
		ideal := "-"
		if ro.ideal > 0 {
			ideal = ro.ideal.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t  %s\n", ro.Version, ro.Hosts, ro.Succeeded, ro.Failed,
			ro.cap, ro.peakEvents, ro.peakSampled, ro.PerHost.Round(100*time.Millisecond), ro.wall.Round(100*time.Millisecond),
			ideal, ratio, ro.toFirstStart.Round(100*time.Millisecond), ro.note)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ninstances booted from user-data: %d; rollouts: %d; requests sent: %d; failed: %d; Slack messages: %d\n",
		r.instances, len(r.rollouts), r.sent, r.failed, r.slack)
}
