package puller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aptfleet/aptfleet/internal/event"
)

// This file is the agent's side of the gates on a rollout: the deploy
// window and the canary stage (holds), the CloudWatch alarms and the canary
// analysis (release failures). The vocabulary is in canary.go, alarm.go and
// window.go.

// Holds of the gates, beside the pause and the quarantine.
const (
	HoldWindow HoldKind = "outside window"     // the app's deploy window is shut; Until is when it opens
	HoldCanary HoldKind = "waiting for canary" // the version's canary stage runs (or awaits promotion)
)

// Host states of a canary once it is healthy on the version.
const (
	StateBaking   HostState = "baking"             // a canary serving the version while the analysis runs
	StateAwaiting HostState = "awaiting_promotion" // a canary that passed, waiting for an operator
)

// StepAlarms and StepCanary name the release failures that are not a step
// of the pipeline: an alarm in ALARM, and a failed canary analysis.
const (
	StepAlarms = "alarms"
	StepCanary = "canary"
)

// stepDown reports a move to an older version (the index dropped the
// running one: a rollback or a yank). It runs no canary stage and is not
// stopped by alarms: it is how a fleet gets away from a bad version.
func stepDown(a *Agent, current, target string) bool {
	return current != "" && target != "" && a.deps.Compare(current, target) > 0
}

// windowHold is the hold of a shut deploy window, nil while it is open.
func (a *Agent) windowHold(ar *appRun) *Hold {
	if ar.window == nil {
		return nil
	}
	open, change := ar.window.Next(a.now())
	if open {
		return nil
	}
	return &Hold{Kind: HoldWindow, Reason: ar.window.String(), Until: change}
}

// canaryHold reads (only reads) target's canary stage: a hold while it runs
// or awaits promotion, unless this host holds a place or a place is free.
func (a *Agent) canaryHold(ctx context.Context, ar *appRun, target string) (*Hold, error) {
	if !ar.Canary.Enabled() || a.deps.Canaries == nil || stepDown(a, ar.current, target) {
		return nil, nil
	}
	stage, free, mine, err := a.deps.Canaries.Peek(ctx, ar.Name, ar.Env, target, a.host)
	if err != nil {
		return nil, err
	}
	switch {
	case stage.Open():
		ar.openStage = target
		return nil, nil
	case free, mine:
		return nil, nil
	case stage == CanaryAwaiting:
		return &Hold{Kind: HoldCanary, Reason: "the canaries of " + target + " await promotion (pkgbuild fleet promote-canary)"}, nil
	case stage.Ended():
		return &Hold{Kind: HoldCanary, Reason: "the canary stage of " + target + " failed"}, nil
	}
	return &Hold{Kind: HoldCanary, Reason: "the canaries of " + target + " are deploying or baking"}, nil
}

// canaryWait is joinCanary's answer when every place is taken: the host is
// held by the stage.
type canaryWait struct{ hold Hold }

func (w *canaryWait) Error() string { return w.hold.String() }

// canaryPlace is this host's place in a version's canary stage, renewed in
// the background until end.
type canaryPlace struct {
	app, env string
	metrics  *Metrics
	version  string
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	view     CanaryView
}

func (p *canaryPlace) end() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
	p.metrics.setCanary(p.app, p.env, "")
}

func (p *canaryPlace) last() CanaryView {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.view
}

// joinCanary runs before a host waits for a slot for target: with a canary
// stage configured and not yet open, it takes a place (the first hosts to
// ask are the canaries) or, when none is free, reports errHeld so that the
// cycle decides again and holds. A nil place means the stage is open (or
// off): the host deploys as any other.
func (a *Agent) joinCanary(ctx context.Context, ar *appRun, current, target string) (*canaryPlace, error) {
	if !ar.Canary.Enabled() || a.deps.Canaries == nil || ar.openStage == target || stepDown(a, current, target) {
		return nil, nil
	}
	want := ar.Canary.Count(a.deps.Members.Alive(ar.Name, ar.Env))
	v, err := a.deps.Canaries.Join(ctx, ar.Name, ar.Env, target, a.host, ar.server, want, a.cfg.LockTTL)
	if err != nil {
		return nil, err
	}
	switch {
	case v.Stage.Open():
		return nil, nil
	case v.Stage.Ended():
		return nil, errTargetBroken
	case !v.Canary:
		return nil, &canaryWait{Hold{Kind: HoldCanary, Reason: "the canaries of " + target + " are deploying or baking"}}
	}
	if v.New {
		a.log.Info("canary of this version", "app", ar.Name, "env", ar.Env, "version", target, "places", v.Want)
		a.emit(ctx, ar, event.CanaryStarted, target, current, fmt.Sprintf("canary %d of %d", len(v.Servers), v.Want), 0)
	}
	a.metrics.setCanary(ar.Name, ar.Env, "deploying")
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &canaryPlace{app: ar.Name, env: ar.Env, metrics: a.metrics, version: target, cancel: cancel, done: make(chan struct{}), view: v}
	go func() {
		defer close(p.done)
		every := a.cfg.LockTTL / 3
		for {
			t := time.NewTimer(every)
			select {
			case <-rctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			v, err := a.deps.Canaries.Renew(rctx, ar.Name, ar.Env, target, a.host, a.cfg.LockTTL)
			if err != nil {
				if rctx.Err() == nil {
					a.log.Warn("renew canary place", "app", ar.Name, "version", target, "err", err)
				}
				continue
			}
			p.mu.Lock()
			p.view = v
			p.mu.Unlock()
		}
	}()
	return p, nil
}

// canaryDeployFailed tells the stage that this canary's own deploy failed:
// a release failure ends the stage (the waiters wake and see the mark), a
// host fault gives the place up to another host.
func (a *Agent) canaryDeployFailed(ctx context.Context, ar *appRun, p *canaryPlace, err error) {
	if p == nil {
		return
	}
	p.end()
	ctx = context.WithoutCancel(ctx)
	if errors.Is(err, ErrDeployFailed) {
		if _, err2 := a.deps.Canaries.Fail(ctx, ar.Name, ar.Env, p.version, a.host, err.Error()); err2 != nil {
			a.log.Warn("end the canary stage", "app", ar.Name, "err", err2)
		}
		return
	}
	if err2 := a.deps.Canaries.Leave(ctx, ar.Name, ar.Env, p.version, a.host); err2 != nil {
		a.log.Warn("give the canary place up", "app", ar.Name, "err", err2)
	}
}

// firingAlarm returns the first of the app's alarms in ALARM, as a reason,
// "" when none is (or the app names none).
func (a *Agent) firingAlarm(ctx context.Context, ar *appRun) (string, error) {
	if len(ar.Alarms) == 0 || ar.AlarmReader == nil {
		return "", nil
	}
	alarms, err := ar.AlarmReader.Alarms(ctx, ar.Alarms)
	if err != nil {
		return "", err
	}
	for _, al := range alarms {
		if al.State == AlarmStateAlarm {
			r := "alarm " + al.Name + " in ALARM"
			if al.Reason != "" {
				r += ": " + al.Reason
			}
			return r, nil
		}
	}
	return "", nil
}

// haltForAlarm brands target when one of the app's alarms fires before this
// host changed anything: no host starts it any more; hosts already on it
// stay (moving them off is an operator's rollback).
func (a *Agent) haltForAlarm(ctx context.Context, ar *appRun, current, target, reason string) error {
	first, err := a.deps.State.MarkBroken(ctx, ar.Name, ar.Env, target, Broken{Reason: reason, Host: a.host, At: a.now().UTC()})
	if err != nil {
		a.log.Error("mark version broken", "app", ar.Name, "version", target, "err", err)
	}
	if first {
		a.emit(ctx, ar, event.Halted, target, current, reason, 0)
	}
	return fmt.Errorf("%w: %s %s: %s", ErrDeployFailed, ar.Name, target, reason)
}

// bake is a canary's part of the stage once it is healthy on target: it
// tells the stage so, waits until every canary is, then serves for bake with
// the analysis and the alarms read every sample, and ends the stage: a pass
// opens it (promote: auto) or waits for an operator (manual); a failure is a
// release failure (the version is marked broken with the figures, and this
// canary, like the others, rolls back). A stage ended by someone else (an
// operator, another canary) is followed: promoted, the host stays; failed or
// aborted, it rolls back.
func (a *Agent) bake(ctx context.Context, ar *appRun, p *canaryPlace, current, target string) error {
	defer p.end()
	app, env := ar.Name, ar.Env
	c := ar.Canary
	v, err := a.deps.Canaries.Ready(ctx, app, env, target, a.host)
	if err != nil {
		a.log.Warn("record canary ready", "app", app, "err", err)
		v = p.last()
	}
	every := min(max(c.Bake/20, 200*time.Millisecond), 5*time.Second, max(a.cfg.LockPoll, 200*time.Millisecond))
	a.record(ctx, ar, "host", a.recordHost(ctx, ar,
		HostRecord{Version: target, State: StateBaking, Reason: "waiting for the other canaries"}))
	for v.Canary && v.Stage == CanaryRunning && v.Ready < v.Want {
		if err := a.sleep(ctx, every); err != nil {
			return err
		}
		if v, err = a.deps.Canaries.Renew(ctx, app, env, target, a.host, a.cfg.LockTTL); err != nil {
			return err
		}
	}
	a.metrics.setCanary(app, env, "baking")
	var obs Observation
	sample := func() {
		if ar.LoadStats == nil {
			return
		}
		cs, err := ar.LoadStats.Counters(ctx)
		if err != nil {
			a.log.Warn("read load balancer counters", "app", app, "err", err)
			return
		}
		obs.Add(cs)
	}
	start := a.now()
	until := start.Add(c.Bake)
	if v.Stage == CanaryRunning && v.Canary {
		sample()
		a.record(ctx, ar, "host", a.recordHost(ctx, ar,
			HostRecord{Version: target, State: StateBaking, Reason: "bake until " + until.UTC().Format(time.RFC3339)}))
	}
	extended := false
	for v.Stage == CanaryRunning && v.Canary {
		if reason, err := a.firingAlarm(ctx, ar); err != nil {
			a.log.Warn("read alarms", "app", app, "err", err)
		} else if reason != "" {
			return a.failCanary(ctx, ar, p, current, target, StepAlarms, reason)
		}
		if !a.now().Before(until) {
			verdict := "bake of " + c.Bake.String() + " passed"
			if ar.LoadStats != nil && c.Bake > 0 {
				an := Analyze(c.Analysis, &obs, v.Servers)
				if an.Insufficient && !extended {
					extended = true
					until = a.now().Add(c.Bake)
					a.log.Info("canary analysis: not enough requests; bake extended once", "app", app, "version", target, "verdict", an.String())
					continue
				}
				if !an.Pass {
					return a.failCanary(ctx, ar, p, current, target, StepCanary, an.String())
				}
				verdict = an.String()
			} else if c.Bake > 0 {
				verdict += " (no analysis: the load balancer's per-server counters are read from HAProxy only)"
			}
			stage, moved, err := a.deps.Canaries.Pass(ctx, app, env, target, a.host, verdict, c.Promote == PromoteManual)
			if err != nil {
				return err
			}
			if moved {
				k := event.CanaryPassed
				if stage == CanaryAwaiting {
					k = event.CanaryAwaiting
				}
				a.emit(ctx, ar, k, target, current, verdict, a.now().Sub(start))
			}
			v.Stage = stage
			break
		}
		if err := a.sleep(ctx, min(every, until.Sub(a.now()))); err != nil {
			return err
		}
		sample()
		if v, err = a.deps.Canaries.Renew(ctx, app, env, target, a.host, a.cfg.LockTTL); err != nil {
			return err
		}
	}
	// Awaiting promotion: the canary stays in its place (renewed) until an
	// operator promotes or aborts; alarms still fail it.
	if v.Stage == CanaryAwaiting {
		a.metrics.setCanary(app, env, "awaiting_promotion")
		a.record(ctx, ar, "host", a.recordHost(ctx, ar,
			HostRecord{Version: target, State: StateAwaiting, Reason: "pkgbuild fleet promote-canary " + app + "/" + env + " " + target}))
		wake := a.deps.Canaries.Wake(ctx, app, env)
		for v.Stage == CanaryAwaiting {
			if reason, err := a.firingAlarm(ctx, ar); err == nil && reason != "" {
				return a.failCanary(ctx, ar, p, current, target, StepAlarms, reason)
			}
			t := time.NewTimer(max(a.cfg.LockPoll, time.Second))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-wake:
			case <-t.C:
			}
			t.Stop()
			if v, err = a.deps.Canaries.Renew(ctx, app, env, target, a.host, a.cfg.LockTTL); err != nil {
				return err
			}
		}
	}
	if v.Stage.Ended() {
		stage, verdict := v.Stage, ""
		if st, err := a.deps.State.IsBroken(ctx, app, env, target); err == nil && st != nil {
			verdict = st.Reason
		}
		return a.rollBackCanary(ctx, ar, current, target, failure{step: StepCanary, fault: FaultRelease,
			err: fmt.Errorf("the canary stage %s: %s", stage, verdict)})
	}
	a.record(ctx, ar, "host", a.recordHost(ctx, ar, HostRecord{Version: target, State: StateOK}))
	return nil
}

// failCanary ends the stage as a release failure: the version is marked
// broken with reason (the analysis figures, or the alarm) whatever
// broken_after says (the canary is the evidence), canary_failed and halted
// go out, and this canary rolls back.
func (a *Agent) failCanary(ctx context.Context, ar *appRun, p *canaryPlace, current, target, step, reason string) error {
	ctx = context.WithoutCancel(ctx)
	app, env := ar.Name, ar.Env
	reason = step + ": " + reason
	first, err := a.deps.State.MarkBroken(ctx, app, env, target, Broken{Reason: reason, Host: a.host, At: a.now().UTC()})
	if err != nil {
		a.log.Error("mark version broken", "app", app, "version", target, "err", err)
	}
	moved, err := a.deps.Canaries.Fail(ctx, app, env, target, a.host, reason)
	if err != nil {
		a.log.Error("end the canary stage", "app", app, "version", target, "err", err)
	}
	if moved {
		a.emit(ctx, ar, event.CanaryFailed, target, current, reason, 0)
	}
	if first {
		a.emit(ctx, ar, event.Halted, target, current, reason, 0)
	}
	p.end()
	return a.rollBackCanary(ctx, ar, current, target, failure{step: step, err: errors.New(strings.TrimPrefix(reason, step+": ")), fault: FaultRelease})
}

// rollBackCanary takes a canary that runs target, in service, back to
// current through the one failure path: it waits for a slot (the version is
// broken, so only the other canaries compete), drains, and hands over to
// fail, which goes back through the pipeline and restores.
func (a *Agent) rollBackCanary(ctx context.Context, ar *appRun, current, target string, f failure) error {
	ctx = context.WithoutCancel(ctx)
	app, env := ar.Name, ar.Env
	lease, err := a.deps.Lock.Acquire(ctx, func() LockRequest {
		return LockRequest{Key: app + ":" + env, Host: a.host, Cap: capFor(a.cfg.Fraction, a.deps.Members.Alive(app, env)), SmallestCap: true}
	})
	if err != nil {
		return fmt.Errorf("wait for a slot to roll the canary back: %w", err)
	}
	defer func() {
		if err := lease.Release(ctx); err != nil {
			a.log.Warn("release deploy slot", "app", app, "env", env, "err", err)
		}
	}()
	start := a.now()
	if ar.Drainer != nil {
		ar.needRestore = true
		if err := ar.Drainer.Drain(ctx); err != nil {
			a.log.Error("drain before the canary's rollback; rolling back in service", "app", app, "err", err)
		}
	}
	return a.fail(ctx, ar, current, target, f, start, false)
}

// sleep waits d on the agent's clock (Deps.Sleep).
func (a *Agent) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	return a.deps.Sleep(ctx, d)
}

// listenCanary makes sure a host held by a canary stage is woken (Notify)
// when the stage changes or a place is given up (Pub/Sub), and when a cheap
// read every third of a lease shows a place lapsed (a canary that died):
// no script runs while the host waits. Under Once, with no Run loop, the
// next call decides again instead.
func (a *Agent) listenCanary(ar *appRun, d Decision) {
	canary := false
	for _, h := range d.Held {
		canary = canary || h.Kind == HoldCanary
	}
	if !canary {
		a.stopListening(ar)
		return
	}
	a.mu.Lock()
	runCtx := a.runCtx
	a.mu.Unlock()
	if runCtx == nil || ar.stopWake != nil {
		return
	}
	ctx, cancel := context.WithCancel(runCtx)
	ar.stopWake = cancel
	app, env, target := ar.Name, ar.Env, d.Target
	wake := a.deps.Canaries.Wake(ctx, app, env)
	go func() {
		every := max(a.cfg.LockTTL/3, a.cfg.LockPoll)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				a.Notify(app, env)
			case <-t.C:
				stage, free, _, err := a.deps.Canaries.Peek(ctx, app, env, target, a.host)
				if err == nil && (free || stage.Open() || stage.Ended()) {
					a.Notify(app, env)
				}
			}
		}
	}()
}

// stopListening ends the listener of listenCanary, if any.
func (a *Agent) stopListening(ar *appRun) {
	if ar.stopWake != nil {
		ar.stopWake()
		ar.stopWake = nil
	}
}
