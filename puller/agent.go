package puller

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/wait"
)

// AppDeps are the host steps of one app, in the order of Config.Apps.
type AppDeps struct {
	Index     Index
	Installer Installer
	Restarter Restarter
	Drainer   Drainer   // nil: no load balancer
	Checker   Checker   // nil: no health check
	Validator Validator // nil: no validate hook
	// LoadStats reads the load balancer's per-server counters for the
	// canary analysis (lb.HAProxy); nil: the analysis is off.
	LoadStats LoadStats
	// AlarmReader reads the app's CloudWatch alarms (puller/cloudwatch);
	// nil: alarms are not read.
	AlarmReader Alarms
}

// Deps are what the agent talks to. Publisher, Tagger and Logger are optional.
type Deps struct {
	Apps      []AppDeps
	Lock      Locker
	State     State
	Members   Membership
	Tagger    VersionTagger
	Publisher Publisher
	// Marks is the host's memory of the broken marks it has seen (in
	// state_dir), put back when Redis loses them; nil: no memory.
	Marks MarkMemory
	// Compare orders Debian versions (<0, 0, >0), as dpkg --compare-versions.
	Compare func(a, b string) int
	Logger  *slog.Logger
	Metrics *Metrics // nil: a fresh NewMetrics()
	Now     func() time.Time
	// Canaries records canary stages; required when an app has one.
	Canaries Canaries
	// Sleep waits on the agent's clock (the canary bake); default
	// internal/wait.Sleep. A test with an injected Now injects it too.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Errors of a cycle that callers may branch on.
var (
	// ErrDeployFailed: the new version failed on this host (a release
	// failure); it was rolled back, and counted toward branding it broken.
	ErrDeployFailed = errors.New("puller: deploy failed")
	// ErrHostFault: a step failed because of this host, not the release; the
	// host was rolled back if it changed, left the rollout and is
	// quarantined until its retry time. No version was marked.
	ErrHostFault = errors.New("puller: host fault")
	// errTargetBroken: the target was marked broken by another host while waiting.
	errTargetBroken = errors.New("puller: target version marked broken")
	// errHeld: a hold (a pause) was set while the host waited for a slot.
	errHeld = errors.New("puller: held")
	// errEpochChanged: Redis lost its data (or another Redis serves it)
	// since the target was chosen, so the marks it was chosen by may be
	// incomplete.
	errEpochChanged = errors.New("puller: Redis lost its data since the target was chosen")
)

// Agent keeps a host's apps at their newest good version.
type Agent struct {
	cfg     Config
	host    string
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics
	apps    []*appRun

	kick    chan struct{}
	mu      sync.Mutex
	pending map[int]bool
	runCtx  context.Context // Run's, for the listeners of held canary stages
}

// appRun is the agent's memory of one app between cycles.
type appRun struct {
	App
	AppDeps
	etag        string      // InRelease ETag of the last fully handled index
	current     string      // installed version, once known
	known       bool        // current was read
	needRestore bool        // drained but not yet restored
	unhealthy   bool        // a rollback failed: out of service until healthy again
	lastErr     string      // last cycle error, to log a repeating one once
	staleDate   time.Time   // Date of the stale InRelease last reported
	steps       event.Steps // step durations of the move in progress, for its events
	// validateOutput is the output of the validate hook that failed the
	// latest move, for its failed event ("" otherwise).
	validateOutput string
	quarantine     *quarantine
	recordRead     bool    // the host's own record was read once (a quarantine survives a restart)
	window         *Window // nil: no deploy window
	server         string  // this host's server name in the load balancer
	// stopWake ends the listener that wakes a host held by a canary stage.
	stopWake context.CancelFunc
	// openStage is the version whose canary stage this host saw open (it
	// stays open): no need to ask for a place.
	openStage string
	epoch     string // the guard's Epoch when the marks were last read
}

// quarantine is a host's memory of its own fault: it starts no deploy of the
// app before until.
type quarantine struct {
	version, reason string
	until           time.Time
	failures        int // host faults in a row: the wait doubles with each
}

// New returns an agent for cfg (validated, apps defaulted) running as host.
func New(cfg Config, host string, deps Deps) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if host == "" {
		return nil, fmt.Errorf("%w: empty host id", ErrConfig)
	}
	if len(deps.Apps) != len(cfg.Apps) {
		return nil, fmt.Errorf("puller: %d app dependencies for %d apps", len(deps.Apps), len(cfg.Apps))
	}
	if deps.Lock == nil || deps.State == nil || deps.Members == nil || deps.Compare == nil {
		return nil, errors.New("puller: Lock, State, Members and Compare are required")
	}
	a := &Agent{
		cfg: cfg, host: host, deps: deps, log: deps.Logger, now: deps.Now, metrics: deps.Metrics,
		kick: make(chan struct{}, 1), pending: map[int]bool{},
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.metrics == nil {
		a.metrics = NewMetrics()
	}
	for i, app := range cfg.Apps {
		d := deps.Apps[i]
		if d.Index == nil || d.Installer == nil || d.Restarter == nil && !app.NoUnits {
			return nil, fmt.Errorf("puller: app %s: Index, Installer and Restarter are required", app.Name)
		}
		ar := &appRun{App: app, AppDeps: d, server: app.Drain.HAProxy.Server}
		if ar.server == "" {
			ar.server = host
		}
		if app.Window != "" {
			w, err := ParseWindow(app.Window)
			if err != nil {
				return nil, fmt.Errorf("%w: app %s: window: %v", ErrConfig, app.Name, err)
			}
			ar.window = w
		}
		if app.Canary.Enabled() && deps.Canaries == nil {
			return nil, fmt.Errorf("puller: app %s has a canary stage: Canaries is required", app.Name)
		}
		if app.Canary.Enabled() {
			a.metrics.setCanary(app.Name, app.Env, "")
		}
		a.metrics.setHeld(app.Name, app.Env, nil)
		a.apps = append(a.apps, ar)
	}
	if a.deps.Sleep == nil {
		a.deps.Sleep = wait.Sleep
	}
	return a, nil
}

// Metrics returns the agent's Prometheus metrics.
func (a *Agent) Metrics() *Metrics { return a.metrics }

// Host is the agent's host id.
func (a *Agent) Host() string { return a.host }

// capFor is max(1, floor(fraction x alive)); the epsilon keeps 1/3 x 300 at 100.
func capFor(fraction float64, alive int) int {
	c := int(math.Floor(fraction*float64(alive) + 1e-9))
	return max(1, c)
}

// jitterOffset is this host's fixed offset in [0, jitter).
func jitterOffset(host string, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(host))
	return time.Duration(h.Sum64() % uint64(jitter))
}

// Notify asks for a cycle of app/env (a Serf "deploy" event); events for apps
// this host does not run are ignored. It never blocks: requests arriving
// while a cycle is pending or running are folded into one more cycle.
func (a *Agent) Notify(app, env string) bool {
	found := false
	a.mu.Lock()
	for i, ar := range a.apps {
		if ar.Name == app && ar.Env == env {
			a.pending[i] = true
			found = true
		}
	}
	a.mu.Unlock()
	if found {
		a.signal()
	}
	return found
}

// Tick asks for a cycle of every app (the schedule does this).
func (a *Agent) Tick() {
	a.mu.Lock()
	for i := range a.apps {
		a.pending[i] = true
	}
	a.mu.Unlock()
	a.signal()
}

func (a *Agent) signal() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run runs cycles on the schedule (with this host's jitter) and on Notify,
// until ctx ends. A cycle error is logged once while it repeats, then its
// recovery; it never stops the agent.
func (a *Agent) Run(ctx context.Context) error {
	sched, err := ParseSchedule(a.cfg.Schedule)
	if err != nil {
		return fmt.Errorf("%w: schedule: %v", ErrConfig, err)
	}
	offset := jitterOffset(a.host, a.cfg.Jitter)
	go func() {
		base := a.now()
		for {
			base = sched.Next(base)
			t := time.NewTimer(base.Add(offset).Sub(a.now()))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				a.Tick()
			}
			if now := a.now(); base.Before(now.Add(-offset)) {
				base = now.Add(-offset) // a long cycle: do not replay missed ticks
			}
		}
	}()
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	go a.watchGuard(ctx)
	a.log.Info("agent running", "host", a.host, "schedule", a.cfg.Schedule, "jitter_offset", offset, "apps", len(a.apps))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.kick:
		}
		a.mu.Lock()
		pending := a.pending
		a.pending = map[int]bool{}
		a.mu.Unlock()
		for i, ar := range a.apps {
			if pending[i] && ctx.Err() == nil {
				a.report(ar, a.cycle(ctx, ar))
			}
		}
	}
}

// report logs a cycle's outcome: the first error of a run of failing cycles,
// then the recovery.
// reportStale emits one stale_index event (which is logged) for each stale
// InRelease refused; the host keeps its version and the check stays failed
// until a fresh index comes.
func (a *Agent) reportStale(ctx context.Context, ar *appRun, err error) {
	var stale *StaleIndexError
	if !errors.As(err, &stale) || stale.Date.Equal(ar.staleDate) {
		return
	}
	ar.staleDate = stale.Date
	a.emit(ctx, ar, event.StaleIndex, ar.current, "", stale.Error(), 0)
}

func (a *Agent) report(ar *appRun, err error) {
	if err == nil {
		if ar.lastErr != "" {
			a.log.Info("cycle recovered", "app", ar.Name, "env", ar.Env)
			ar.lastErr = ""
		}
		return
	}
	if errors.Is(err, ErrDeployFailed) || errors.Is(err, ErrHostFault) {
		ar.lastErr = ""
		return // logged as events already
	}
	var stale *StaleIndexError
	if ar.lastErr == "" && !errors.As(err, &stale) { // a stale index is logged as its event
		a.log.Error("cycle failed", "app", ar.Name, "env", ar.Env, "err", err)
	} else {
		a.log.Debug("cycle failed again", "app", ar.Name, "env", ar.Env, "err", err)
	}
	ar.lastErr = err.Error()
}

// Once runs one check-and-deploy cycle of every app and returns the first error.
func (a *Agent) Once(ctx context.Context) error {
	var first error
	for _, ar := range a.apps {
		if err := a.cycle(ctx, ar); err != nil && first == nil {
			first = fmt.Errorf("%s/%s: %w", ar.Name, ar.Env, err)
		}
	}
	return first
}

// Bootstrap installs every app's target version without a lock (the host
// takes no traffic yet), then restarts and health-checks. Broken marks only
// make it skip versions, each logged with its reason; pauses do not apply.
// It fails only when a step fails on this host.
func (a *Agent) Bootstrap(ctx context.Context) error {
	for _, ar := range a.apps {
		if err := a.bootstrap(ctx, ar); err != nil {
			return fmt.Errorf("bootstrap %s/%s: %w", ar.Name, ar.Env, err)
		}
	}
	return nil
}

func (a *Agent) bootstrap(ctx context.Context, ar *appRun) error {
	_, etag, err := ar.Index.Check(ctx, ar.Dist, "")
	if err != nil {
		return err
	}
	if err := a.waitForMarks(ctx, ar); err != nil {
		return err
	}
	d, err := a.decide(ctx, ar, false)
	if err != nil {
		return err
	}
	for _, sk := range d.Skipped {
		a.log.Warn("bootstrap skips a version", "app", ar.Name, "env", ar.Env, "version", sk.Version, "reason", sk.Reason)
	}
	if !d.Moves() {
		ar.etag = etag
		rec := HostRecord{Version: ar.current, State: StateOK}
		if d.Action == ActionNone {
			a.log.Warn("bootstrap installs nothing", "app", ar.Name, "env", ar.Env, "reason", d.Next)
			rec.State, rec.Reason = StateHeld, d.Next
		}
		return a.recordHost(ctx, ar, rec)
	}
	current, target := ar.current, d.Target
	a.log.Info("bootstrap installs", "app", ar.Name, "env", ar.Env, "version", target, "newest", d.Newest)
	if err := a.recordHost(ctx, ar, HostRecord{Version: current, Target: target, State: StateBootstrap}); err != nil {
		return err // before the first step: fatal (see record)
	}
	start := a.now()
	ar.steps = event.Steps{}
	a.emit(ctx, ar, event.Started, target, current, "", 0)
	if err := a.move(ctx, ar, target, nil); err != nil {
		var se *stepError
		if !errors.As(err, &se) {
			return err
		}
		return a.fail(ctx, ar, current, target, attribute(se, current), start, true)
	}
	ar.quarantine = nil
	took := a.now().Sub(start)
	a.setCurrent(ar, target)
	ar.etag = etag
	a.record(ctx, ar, "host", a.recordHost(ctx, ar, HostRecord{Version: target, State: StateOK}))
	// A host that boots while target rolls out counts in that rollout; a
	// first boot, or one after the rollout ended, starts none.
	r, _, err := a.deps.State.JoinRollout(ctx, ar.Name, ar.Env, target)
	a.record(ctx, ar, "rollout", err)
	a.emitProgress(ctx, ar, event.Succeeded, target, current, "", took, r)
	return nil
}

// A step is one stage of moving a host to a version.
type step struct {
	name string
	run  func(ctx context.Context, ar *appRun, version string) error
}

// pipeline is the one list of steps that every move of a host to a version
// runs, in order: bootstrap, a deploy, and the rollback of a failed deploy all
// call move, which runs it. A new stage (a validate hook after the restart, a
// canary soak) is one more entry here. Draining is not a step of its own: a
// deploy drains once before the first step and restores once after the last
// (see deploy); bootstrap takes no traffic yet, and a rollback runs drained.
func (a *Agent) pipeline() []step {
	return []step{
		{StepInstall, func(ctx context.Context, ar *appRun, v string) error { return ar.Installer.Install(ctx, ar.Name, v) }},
		{StepRestart, func(ctx context.Context, ar *appRun, v string) error {
			if ar.NoUnits {
				return nil // a package with no process: nothing to restart
			}
			return ar.Restarter.Restart(ctx, ar.Name)
		}},
		{StepValidate, func(ctx context.Context, ar *appRun, v string) error { return a.validate(ctx, ar, v) }},
		{StepHealth, func(ctx context.Context, ar *appRun, v string) error { return ar.check(ctx) }},
	}
}

// validate runs the app's validate hook, if any, after the restart. Its
// output goes to the journal, and into the failed event when it fails.
func (a *Agent) validate(ctx context.Context, ar *appRun, version string) error {
	ar.validateOutput = ""
	if ar.Validator == nil {
		return nil
	}
	out, err := ar.Validator.Validate(ctx, ar.Name, version)
	if err != nil {
		ar.validateOutput = out
		return err
	}
	a.log.Info("validate passed", "app", ar.Name, "env", ar.Env, "version", version, "output", out)
	return nil
}

// stepError is a step of the pipeline that failed.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// move runs the pipeline for version. before, when not nil, runs before every
// step (a deploy's lease guard); its error is returned as is, a step's as a
// *stepError. Each step's duration is added to ar.steps and observed.
func (a *Agent) move(ctx context.Context, ar *appRun, version string, before func() error) error {
	for _, st := range a.pipeline() {
		if before != nil {
			if err := before(); err != nil {
				return err
			}
		}
		t0 := a.now()
		err := st.run(ctx, ar, version)
		a.timed(ar, st.name, t0)
		if err != nil {
			return &stepError{step: st.name, err: err}
		}
	}
	return nil
}

// timed records that step, begun at t0, has ended: in ar.steps, for the
// move's events, and in the step duration histogram. A step is labelled by
// its name's first word ("health check" is health).
func (a *Agent) timed(ar *appRun, step string, t0 time.Time) {
	if i := strings.IndexByte(step, ' '); i > 0 {
		step = step[:i]
	}
	d := a.now().Sub(t0)
	ar.steps.Add(step, d.Seconds())
	a.metrics.observeStep(ar.Name, ar.Env, step, d)
}

// recordHost writes the host's record for ar and sets its state gauge.
func (a *Agent) recordHost(ctx context.Context, ar *appRun, rec HostRecord) error {
	a.metrics.setState(ar.Name, ar.Env, string(rec.State))
	return a.deps.State.RecordHost(ctx, ar.Name, ar.Env, a.host, rec)
}

// record applies the one error policy for bookkeeping writes: the host
// records, the rollout's counts and the recorded cap. A write that fails
// before a deploy's first destructive step is returned by its caller and
// ends the cycle (Redis is away, and the semaphore lives there too, so no
// deploy starts). A write that fails once the host has started changing (or
// after it changed) is passed here: it is logged as a warning and the work
// goes on, because the host's own state (its installed version, its place in
// the load balancer) comes first and its record is rewritten at every tick.
// The broken mark is not bookkeeping: it is the decision that stops the
// fleet, and a failure to write it is logged as an error (see fail).
func (a *Agent) record(ctx context.Context, ar *appRun, what string, err error) {
	if err != nil {
		a.log.Warn("record "+what+"; going on", "app", ar.Name, "env", ar.Env, "err", err)
	}
}

// resting is the record of a host with nothing to deploy.
func (a *Agent) resting(ar *appRun) HostRecord {
	if ar.unhealthy {
		return HostRecord{Version: ar.current, State: StateFailed, Reason: "unhealthy after a failed rollback"}
	}
	return HostRecord{Version: ar.current, State: StateOK}
}

func (ar *appRun) check(ctx context.Context) error {
	if ar.Checker == nil {
		return nil
	}
	return ar.Checker.Check(ctx)
}

// decide gathers ar's situation (the signed index, the broken marks, the
// installed version and, with holds, the pause, this host's quarantine and
// the deploy window) and applies Decide; with holds, a move that may start
// is then held while the target's canary stage runs without this host (a
// read only: the place is taken in deploy).
func (a *Agent) decide(ctx context.Context, ar *appRun, holds bool) (Decision, error) {
	s, err := a.situation(ctx, ar, holds)
	if err != nil {
		return Decision{}, err
	}
	d := Decide(s, a.deps.Compare)
	if holds && d.Start() {
		h, err := a.canaryHold(ctx, ar, d.Target)
		if err != nil {
			return Decision{}, err
		}
		if h != nil {
			d.Held = append(d.Held, *h)
			d.Next = fmt.Sprintf("hold: would move to %s, but %s", d.Target, h)
		}
	}
	return d, nil
}

func (a *Agent) situation(ctx context.Context, ar *appRun, holds bool) (Situation, error) {
	listing, err := ar.Index.Versions(ctx, ar.Dist, ar.Name)
	if err != nil {
		return Situation{}, err
	}
	versions := listing.Versions
	a.metrics.checked(ar.Name, ar.Env, a.now())
	a.metrics.setValidUntil(ar.Name, ar.Env, listing.ValidUntil)
	broken, _, err := a.marks(ctx, ar)
	if err != nil {
		return Situation{}, err
	}
	newest := ""
	for _, v := range versions {
		if newest == "" || a.deps.Compare(v, newest) > 0 {
			newest = v
		}
	}
	_, halted := broken[newest]
	a.metrics.setHalted(ar.Name, ar.Env, newest != "" && halted)
	if !ar.known {
		cur, err := ar.Installer.Installed(ctx, ar.Name)
		if err != nil {
			return Situation{}, fmt.Errorf("installed version of %s: %w", ar.Name, err)
		}
		a.setCurrent(ar, cur)
	}
	s := Situation{Running: ar.current, Index: versions, Broken: broken}
	if holds {
		if s.Holds, err = a.holds(ctx, ar); err != nil {
			return Situation{}, err
		}
	}
	return s, nil
}

// holds lists what keeps this host from starting a deploy of ar now: its
// own quarantine and the app/env's pause.
func (a *Agent) holds(ctx context.Context, ar *appRun) ([]Hold, error) {
	var hs []Hold
	if !ar.recordRead {
		// A quarantine outlives the process (`puller once` as a Serf event
		// handler, a restarted agent): its record says until when.
		r, err := a.deps.State.Host(ctx, ar.Name, ar.Env, a.host)
		if err != nil {
			return nil, err
		}
		ar.recordRead = true
		if r != nil && r.State == StateFailed && r.RetryAt.After(a.now()) && ar.quarantine == nil {
			ar.quarantine = &quarantine{version: r.Target, reason: r.Reason, until: r.RetryAt, failures: 1}
		}
	}
	if q := ar.quarantine; q != nil && a.now().Before(q.until) {
		hs = append(hs, Hold{Kind: HoldQuarantine, Reason: q.reason, Until: q.until})
	}
	p, err := a.deps.State.Paused(ctx, ar.Name, ar.Env)
	if err != nil {
		return nil, err
	}
	if p != nil {
		hs = append(hs, pauseHold(p))
	}
	if h := a.windowHold(ar); h != nil {
		hs = append(hs, *h)
	}
	return hs, nil
}

func pauseHold(p *Pause) Hold {
	who := p.Actor
	if who == "" {
		who = "an operator"
	}
	reason := "by " + who
	if p.Reason != "" {
		reason += ": " + p.Reason
	}
	return Hold{Kind: HoldPause, Reason: reason}
}

func (a *Agent) setCurrent(ar *appRun, v string) {
	ar.current, ar.known = v, true
	a.metrics.setVersion(ar.Name, ar.Env, v)
	if a.deps.Tagger != nil && v != "" {
		if err := a.deps.Tagger.SetVersion(ar.Name, v); err != nil {
			a.log.Warn("set version tag", "app", ar.Name, "err", err)
		}
	}
}

// cycle is one check-and-deploy of one app.
func (a *Agent) cycle(ctx context.Context, ar *appRun) error {
	if ar.unhealthy && ar.check(ctx) == nil {
		a.log.Info("healthy again after a failed rollback", "app", ar.Name, "env", ar.Env)
		ar.unhealthy, ar.needRestore = false, true
	}
	if ar.needRestore && ar.Drainer != nil {
		if err := ar.Drainer.Restore(ctx); err != nil {
			return fmt.Errorf("restore into the load balancer: %w", err)
		}
		ar.needRestore = false
	}
	changed, etag, err := ar.Index.Check(ctx, ar.Dist, ar.etag)
	a.metrics.lastCheck.WithLabelValues(ar.Name, ar.Env).Set(float64(a.now().Unix()))
	if err != nil {
		return fmt.Errorf("check %s: %w", ar.Dist, err)
	}
	if !changed && ar.known {
		// Idle: one conditional request, the heartbeat that keeps this host
		// live in status, and the semaphore's guard armed.
		a.metrics.checked(ar.Name, ar.Env, a.now())
		return a.rest(ctx, ar, ar.current)
	}
	for attempt := 0; ; attempt++ {
		d, err := a.decide(ctx, ar, true)
		if err != nil {
			a.reportStale(ctx, ar, err)
			return err
		}
		if !d.Moves() {
			a.metrics.setHeld(ar.Name, ar.Env, nil)
			a.stopListening(ar)
			ar.etag = etag
			return a.rest(ctx, ar, ar.current)
		}
		if len(d.Held) > 0 {
			// The index stays unhandled (etag kept), so every tick decides
			// again and the host starts once the hold lifts; a host held by
			// a canary stage is also woken when the stage changes.
			a.listenCanary(ar, d)
			a.metrics.setHeld(ar.Name, ar.Env, d.Held)
			return a.hold(ctx, ar, d)
		}
		a.metrics.setHeld(ar.Name, ar.Env, nil)
		a.stopListening(ar)
		err = a.deploy(ctx, ar, ar.current, d.Target)
		var wait *canaryWait
		switch {
		case errors.As(err, &wait):
			// Another host took the last canary place: held, without
			// reading everything again.
			d.Held = append(d.Held, wait.hold)
			d.Next = fmt.Sprintf("hold: would move to %s, but %s", d.Target, wait.hold)
			a.listenCanary(ar, d)
			a.metrics.setHeld(ar.Name, ar.Env, d.Held)
			return a.hold(ctx, ar, d)
		case (errors.Is(err, errTargetBroken) || errors.Is(err, errHeld)) && attempt < 3:
			a.log.Info("target marked broken or app paused while waiting; deciding again", "app", ar.Name, "env", ar.Env, "version", d.Target, "why", err)
			continue
		case errors.Is(err, errEpochChanged) && attempt < 3:
			a.log.Warn("Redis lost its data while this host waited for a slot; deciding again", "app", ar.Name, "env", ar.Env, "version", d.Target)
			continue
		case err == nil || errors.Is(err, ErrDeployFailed):
			ar.etag = etag // this index is handled
		}
		return err
	}
}

// hold records a host whose move is due but held: quarantined after its own
// fault (state failed, with its retry time), or paused (state held).
func (a *Agent) hold(ctx context.Context, ar *appRun, d Decision) error {
	rec := HostRecord{Version: ar.current, Target: d.Target, State: StateHeld, Reason: d.Held[0].String()}
	if q := ar.quarantine; q != nil && d.Held[0].Kind == HoldQuarantine {
		rec.State, rec.Reason, rec.RetryAt = StateFailed, q.reason, q.until
	}
	if err := a.recordHost(ctx, ar, rec); err != nil {
		return err
	}
	_, err := a.deps.Lock.Arm(ctx, ar.Name+":"+ar.Env)
	return err
}

// rest records a host with nothing to deploy and arms the app/env's
// semaphore guard; a host that remembers broken marks also reads them, to
// put back those Redis lost and forget those an operator removed.
func (a *Agent) rest(ctx context.Context, ar *appRun, current string) error {
	if err := a.recordHost(ctx, ar, a.resting(ar)); err != nil {
		return err
	}
	if a.deps.Marks != nil {
		mem, err := a.deps.Marks.Marks(marksKey(ar))
		if err != nil {
			return fmt.Errorf("remembered broken marks of %s/%s: %w", ar.Name, ar.Env, err)
		}
		if len(mem) > 0 {
			_, _, err := a.marks(ctx, ar)
			return err
		}
	}
	_, err := a.deps.Lock.Arm(ctx, ar.Name+":"+ar.Env)
	return err
}

// deploy moves ar from current to target under a deploy slot.
func (a *Agent) deploy(ctx context.Context, ar *appRun, current, target string) error {
	place, err := a.joinCanary(ctx, ar, current, target)
	if err != nil {
		return err
	}
	err = a.deployOne(ctx, ar, current, target)
	switch {
	case place == nil:
		return err
	case err != nil:
		a.canaryDeployFailed(ctx, ar, place, err)
		return err
	}
	return a.bake(ctx, ar, place, current, target)
}

// deployOne is one host's move under a slot: wait for it, check the gates,
// drain, run the pipeline, restore; or the failure path.
func (a *Agent) deployOne(ctx context.Context, ar *appRun, current, target string) error {
	app, env := ar.Name, ar.Env
	if err := a.recordHost(ctx, ar, HostRecord{Version: current, Target: target, State: StateWaiting}); err != nil {
		return err // Redis is away: no deploy starts
	}
	start := a.deps.State.StartRollout
	if current != "" && a.deps.Compare(current, target) > 0 {
		start = a.deps.State.StepDown // a rollback: target's rollout runs again
	}
	if err := start(ctx, app, env, target, a.deps.Members.Alive(app, env)); err != nil {
		return err
	}
	lease, err := a.acquire(ctx, ar, target)
	if err != nil {
		return err
	}
	defer func() {
		if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
			a.log.Warn("release deploy slot", "app", app, "env", env, "err", err)
		}
	}()
	if p, err := a.deps.State.Paused(ctx, app, env); err != nil {
		return err
	} else if p != nil {
		return errHeld // paused while this host waited: it starts nothing
	}
	if b, err := a.deps.State.IsBroken(ctx, app, env, target); err != nil {
		return err
	} else if b != nil {
		return errTargetBroken
	}
	if a.windowHold(ar) != nil {
		return errHeld // the window shut while this host waited
	}
	if stepDown(a, current, target) {
		// A step down is a rollback: an alarm still firing is likely why it
		// happens, and must not brand the version the fleet goes back to.
	} else if reason, err := a.firingAlarm(ctx, ar); err != nil {
		a.log.Warn("read alarms; going on without them", "app", app, "env", env, "err", err)
	} else if reason != "" {
		return a.haltForAlarm(ctx, ar, current, target, reason)
	}
	// The broken mark is the last gate read: a host of the same wave that
	// fails the version marks it at any moment, and the later this host
	// reads the mark, the fewer hosts install a version already branded.
	if b, err := a.deps.State.IsBroken(ctx, app, env, target); err != nil {
		return err
	} else if b != nil {
		return errTargetBroken
	}
	began := a.now()
	ar.steps = event.Steps{}
	a.emit(ctx, ar, event.Started, target, current, "", 0)
	if err := a.recordHost(ctx, ar, HostRecord{Version: current, Target: target, State: StateDeploying}); err != nil {
		return err
	}
	// Every destructive step starts only under a live lease; a lost lease is
	// re-acquired first. Steps run under ctx, not the lease's context: an
	// apt-get or systemctl killed halfway would leave the host worse off.
	guard := func() error {
		if lease.Alive() {
			return nil
		}
		a.log.Warn("deploy slot lost; waiting for a slot again before the next step", "app", app, "env", env, "version", target)
		_ = lease.Release(context.WithoutCancel(ctx)) // lost already: nothing to free
		l, err := a.acquire(ctx, ar, target)
		if err != nil {
			return err
		}
		lease = l
		return nil
	}
	if ar.Drainer != nil {
		if err := guard(); err != nil {
			return err
		}
		ar.needRestore = true
		t0 := a.now()
		err := ar.Drainer.Drain(ctx)
		a.timed(ar, StepDrain, t0)
		if err != nil {
			return a.fail(ctx, ar, current, target, attribute(&stepError{step: StepDrain, err: err}, current), began, false)
		}
	}
	// Right before the first step the mark is read once more, with the
	// guard's Epoch (confirm): the drain may have taken a while, and Redis
	// may have lost its data since the target was chosen.
	confirmed := false
	before := func() error {
		if err := guard(); err != nil {
			return err
		}
		if confirmed {
			return nil
		}
		confirmed = true
		return a.confirm(ctx, ar, target)
	}
	if err := a.move(ctx, ar, target, before); err != nil {
		var se *stepError
		if errors.Is(err, errTargetBroken) || errors.Is(err, errEpochChanged) {
			a.restore(ctx, ar) // nothing was installed: back into service
			return err
		}
		if !errors.As(err, &se) {
			return err // the guard: no slot, the host stays drained until the next cycle
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", se.step, target, ctx.Err())
		}
		return a.fail(ctx, ar, current, target, attribute(se, current), began, false)
	}
	ar.unhealthy, ar.quarantine = false, nil
	a.restore(ctx, ar)
	a.setCurrent(ar, target)
	d := a.now().Sub(began)
	a.metrics.duration.WithLabelValues(app, env, "succeeded").Observe(d.Seconds())
	a.record(ctx, ar, "host", a.recordHost(ctx, ar, HostRecord{Version: target, State: StateOK}))
	r, err := a.deps.State.FinishHost(ctx, app, env, target, true)
	a.record(ctx, ar, "rollout", err)
	a.emitProgress(ctx, ar, event.Succeeded, target, current, "", d, r)
	return nil
}

// acquire waits for a deploy slot for target. The cap follows the live
// membership at every attempt, and the smallest view of it among the hosts
// taking part is enforced; the cap a lease was granted under is recorded in
// the rollout. The wait ends early when target is marked broken.
func (a *Agent) acquire(ctx context.Context, ar *appRun, target string) (Lease, error) {
	app, env := ar.Name, ar.Env
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex // req is also called from the lease's renewal goroutine
	var lastCheck time.Time
	var doubt bool
	req := func() LockRequest {
		// A waiter attempts at every poll and when a release wakes it;
		// reading the broken mark, the pause and the rollout at most once
		// per poll interval keeps the attempts cheap. A host that is
		// admitted reads the mark and the pause again before its first step.
		mu.Lock()
		now := a.now()
		due := now.Sub(lastCheck) >= a.cfg.LockPoll
		if due {
			lastCheck = now
		}
		mu.Unlock()
		if due && actx.Err() == nil {
			if b, err := a.deps.State.IsBroken(actx, app, env, target); err == nil && b != nil {
				cancel(errTargetBroken)
			}
			if p, err := a.deps.State.Paused(actx, app, env); err == nil && p != nil {
				cancel(errHeld)
			}
			if a.windowHold(ar) != nil {
				cancel(errHeld)
			}
			if r, err := a.deps.State.Rollout(actx, app, env, target); err == nil {
				mu.Lock()
				doubt = Doubtful(r, a.cfg.BrokenAfter, false)
				mu.Unlock()
			}
		}
		c := capFor(a.cfg.Fraction, a.deps.Members.Alive(app, env))
		mu.Lock()
		if doubt {
			c = 1 // a release failure is in doubt: risk one host at a time
		}
		mu.Unlock()
		return LockRequest{Key: app + ":" + env, Host: a.host, Cap: c, SmallestCap: true}
	}
	start := a.now()
	lease, err := a.deps.Lock.Acquire(actx, req)
	a.metrics.lockWait.WithLabelValues(app, env).Observe(a.now().Sub(start).Seconds())
	if err != nil {
		if c := context.Cause(actx); errors.Is(c, errTargetBroken) || errors.Is(c, errHeld) {
			return nil, c
		}
		return nil, fmt.Errorf("wait for a deploy slot: %w", err)
	}
	a.record(ctx, ar, "cap", a.deps.State.RecordCap(ctx, app, env, target, lease.Cap()))
	return lease, nil
}

func (a *Agent) restore(ctx context.Context, ar *appRun) {
	if ar.Drainer == nil || !ar.needRestore {
		return
	}
	t0 := a.now()
	err := ar.Drainer.Restore(ctx)
	a.timed(ar, "restore", t0)
	if err != nil {
		a.log.Error("restore into the load balancer; retrying next cycle", "app", ar.Name, "err", err)
		return
	}
	ar.needRestore = false
}

// attribute classifies a failed step (see Attribute): an install failure
// the installer did not attribute is the release's on a host that runs a
// version of the package already (dpkg worked here before).
func attribute(se *stepError, current string) failure {
	f, kind := Attribute(se.step, se.err, current != "")
	return failure{step: se.step, err: se.err, fault: f, kind: kind}
}

// fail is the one failure path, for a deploy and for bootstrap. It reports
// the failure, then:
//
//   - goes back to current through the same pipeline when the failed step
//     changed the host (a drain that failed, or an install that left the
//     installed version as it was, changed nothing to undo);
//   - a release failure (deploy only) is counted toward branding the version:
//     it is marked broken once broken_after distinct hosts had one, and the
//     host reports rolled_back (and halted, when its failure set the mark);
//   - a host fault writes no mark: the host records state failed with the
//     target and the reason, leaves the rollout (it no longer counts toward
//     its total), publishes host_failed and is quarantined: it starts no
//     deploy of the app before retry_after (doubling with each host fault
//     in a row, up to 16 times).
//
// Bootstrap counts nothing toward a mark: a new instance that cannot start a
// version must not halt the fleet.
func (a *Agent) fail(ctx context.Context, ar *appRun, current, target string, f failure, start time.Time, bootstrap bool) error {
	app, env := ar.Name, ar.Env
	ctx = context.WithoutCancel(ctx) // a rollback must finish
	reason := f.reason()
	a.metrics.failures.WithLabelValues(app, env).Inc()
	a.metrics.duration.WithLabelValues(app, env, "failed").Observe(a.now().Sub(start).Seconds())
	a.emit(ctx, ar, event.Failed, target, current, reason, a.now().Sub(start))
	changed := f.step != StepDrain
	if f.step == StepInstall {
		if v, err := ar.Installer.Installed(ctx, app); err == nil && v == current {
			changed = false
		}
	}
	var r Rollout
	first := false
	if f.fault == FaultRelease && !bootstrap {
		var err error
		mark := Broken{Reason: reason, Host: a.host, At: a.now().UTC()}
		r, first, err = a.deps.State.ReleaseFailure(ctx, app, env, target, mark, a.cfg.BrokenAfter)
		if err != nil {
			a.log.Error("record release failure; the version may not be marked broken", "app", app, "version", target, "err", err)
		}
		if first || (err != nil && a.cfg.BrokenAfter <= 1) {
			// A mark this host set, or (its write failed) would have set.
			a.rememberMark(ar, target, mark, err == nil)
		}
	}
	back := current          // "" when the host could not get back to current
	ar.steps = event.Steps{} // the rolled_back event carries the rollback's steps
	if changed {
		if current != "" {
			a.record(ctx, ar, "host", a.recordHost(ctx, ar, HostRecord{Version: current, Target: target, State: StateRollingBack, Reason: reason}))
			if err := a.move(ctx, ar, current, nil); err != nil {
				a.log.Error("rollback failed; host left out of the load balancer", "app", app, "version", current, "err", err)
				back = ""
			}
		}
	}
	if changed && back == "" {
		ar.needRestore = false
		ar.unhealthy = current != "" // a failed rollback: out of service until healthy
		ar.known = false             // read the installed version from dpkg next time
	} else {
		a.restore(ctx, ar)
		a.setCurrent(ar, back)
	}
	rec := HostRecord{Version: back, Target: target, State: StateFailed, Reason: reason}
	if changed && back == "" && current != "" {
		rec.Reason = reason + "; the rollback to " + current + " failed too"
	}
	if f.fault == FaultHost {
		if !bootstrap {
			var err error
			r, err = a.deps.State.LeaveRollout(ctx, app, env, target)
			a.record(ctx, ar, "rollout", err)
			q := ar.quarantine
			if q == nil {
				q = &quarantine{}
			}
			q.version, q.reason, q.failures = target, reason, q.failures+1
			q.until = a.now().Add(a.cfg.RetryAfter << min(q.failures-1, 4))
			ar.quarantine = q
			rec.RetryAt = q.until
		}
		a.record(ctx, ar, "host", a.recordHost(ctx, ar, rec))
		a.emitProgress(ctx, ar, event.HostFailed, target, current, reason, 0, r)
		return fmt.Errorf("%w: %s %s: %s", ErrHostFault, app, target, reason)
	}
	if !changed || back != "" {
		rec = HostRecord{Version: back, State: StateOK}
	}
	a.record(ctx, ar, "host", a.recordHost(ctx, ar, rec))
	if back != "" && changed {
		// The event is about the failed version; Previous is the one the
		// host went back to (the version before the deploy).
		a.emitProgress(ctx, ar, event.RolledBack, target, back, reason, 0, r)
	}
	if first {
		a.emitProgress(ctx, ar, event.Halted, target, current, reason, 0, r)
	}
	return fmt.Errorf("%w: %s %s: %s", ErrDeployFailed, app, target, reason)
}

func (a *Agent) emit(ctx context.Context, ar *appRun, k event.Kind, version, previous, reason string, d time.Duration) {
	a.emitProgress(ctx, ar, k, version, previous, reason, d, Rollout{})
}

// emitProgress logs e, records a host's outcome (succeeded, failed,
// rolled_back, host_failed, halted) in the app/env's history, and publishes
// e when a Publisher is configured. This is the one path of every deploy
// event.
func (a *Agent) emitProgress(ctx context.Context, ar *appRun, k event.Kind, version, previous, reason string, d time.Duration, r Rollout) {
	e := event.New(k, ar.Name, ar.Env, version, a.host, a.now())
	e.Previous, e.Reason = previous, reason
	e.Total, e.Done, e.Failed = r.Total, r.Done, r.Failed
	e.DurationSeconds = d.Seconds()
	outcome := false
	switch k {
	case event.Succeeded, event.Failed, event.RolledBack, event.HostFailed:
		e.Steps = ar.steps
		outcome = true
		if k == event.Failed {
			e.Output = ar.validateOutput
		}
	case event.Halted:
		outcome = true
	}
	level := slog.LevelInfo
	if k == event.Failed || k == event.Halted || k == event.HostFailed {
		level = slog.LevelError
	}
	attrs := []any{"app", e.App, "env", e.Env, "version", e.Version,
		"previous", e.Previous, "host", e.Host, "reason", e.Reason, "duration_s", e.DurationSeconds,
		"done", e.Done, "failed", e.Failed, "total", e.Total, "steps", e.Steps.String()}
	if e.Output != "" {
		attrs = append(attrs, "output", e.Output)
	}
	a.log.Log(ctx, level, "deploy "+string(k), attrs...)
	if outcome {
		a.record(ctx, ar, "history", a.deps.State.Record(context.WithoutCancel(ctx), e))
	}
	if a.deps.Publisher != nil {
		if err := a.deps.Publisher.Publish(context.WithoutCancel(ctx), e); err != nil {
			a.log.Warn("publish deploy event", "kind", k, "err", err)
		}
	}
}
