// Package event is the schema of the deploy events the puller emits and the
// notifier renders. It is shared so the two never disagree on field names.
package event

import (
	"strconv"
	"time"
)

// Source marks a JSON message as an aptfleet deploy event.
const Source = "aptfleet.deploy"

// Kind is what happened.
type Kind string

// Kinds emitted by the agents.
const (
	Started        Kind = "started"         // a host began installing a version
	Succeeded      Kind = "succeeded"       // a host is healthy on the new version
	Failed         Kind = "failed"          // a host's deploy failed (install or health check)
	RolledBack     Kind = "rolled_back"     // a host went back to the previous version
	Halted         Kind = "halted"          // a version was marked broken: the rollout stops everywhere
	RolloutStarted Kind = "rollout_started" // the first host of an app/env began a version
	RolloutDone    Kind = "rollout_done"    // every host counted in a rollout is healthy on it
	StaleIndex     Kind = "stale_index"     // a host refused an InRelease older than one it accepted: a replayed index
	HostFailed     Kind = "host_failed"     // a host's own fault (source, apt, disk, dpkg, load balancer) failed a deploy: the host is quarantined, the release is not branded

	CanaryStarted  Kind = "canary_started"  // the first canary of a version began its deploy: the rest wait
	CanaryPassed   Kind = "canary_passed"   // the canaries baked and the analysis passed (Reason: the figures)
	CanaryAwaiting Kind = "canary_awaiting" // passed, awaiting an operator's promote-canary (promote: manual)
	CanaryFailed   Kind = "canary_failed"   // the analysis, an alarm or the validate hook failed a canary (Reason: why, with the figures)
)

// Kinds emitted by an operator or CI through pkgbuild; they carry an Actor.
const (
	Paused    Kind = "paused"    // no host starts a deploy of the app/env until resumed
	Resumed   Kind = "resumed"   // the pause is lifted: the rollout continues
	Unbroken  Kind = "unbroken"  // a broken mark was removed and its halted rollout reset
	Forgotten Kind = "forgotten" // a host's record was removed (a terminated instance)
	Promoted  Kind = "promoted"  // a version was copied into the env's dist
	Yanked    Kind = "yanked"    // a version was taken out of the env's dist
	Rollback  Kind = "rollback"  // the newest versions were taken out: the fleet steps down to Version

	CanaryPromoted Kind = "canary_promoted" // an operator ended a canary stage: the rest roll on
	CanaryAborted  Kind = "canary_aborted"  // an operator failed a canary stage: the version is marked broken, the canaries roll back
)

// Deploy is one deploy event, published to SNS as JSON and written to the log.
type Deploy struct {
	Source   string    `json:"source"` // always Source
	Kind     Kind      `json:"kind"`
	App      string    `json:"app"`
	Env      string    `json:"env"`
	Version  string    `json:"version"`
	Previous string    `json:"previous,omitempty"` // version before the deploy, if any
	Host     string    `json:"host"`
	Reason   string    `json:"reason,omitempty"` // why it failed / was halted / an operator acted
	Time     time.Time `json:"time"`
	// Actor is who caused an operator event: a person (user@host) or a CI
	// job (its user and build URL).
	Actor string `json:"actor,omitempty"`
	// From is the dist a promoted version came from.
	From string `json:"from,omitempty"`
	// Removed lists the versions a rollback or yank took out of the dist,
	// comma-separated (a string keeps Deploy comparable).
	Removed string `json:"removed,omitempty"`
	// Rollout progress when the event was emitted, if known.
	Total  int `json:"total,omitempty"`
	Done   int `json:"done,omitempty"`
	Failed int `json:"failed,omitempty"`
	// Output is the tail of what a validate hook printed, for failed events.
	Output string `json:"output,omitempty"`
	// Duration of the host's deploy, for succeeded/failed events.
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	// Steps is how long each step of the host's deploy took, for
	// succeeded, failed and rolled_back events (a rolled_back event's are
	// the rollback's own).
	Steps Steps `json:"steps,omitzero"`
}

// Steps is the seconds each step of one host's deploy took; a step that did
// not run is 0.
type Steps struct {
	Drain    float64 `json:"drain,omitempty"`
	Install  float64 `json:"install,omitempty"`
	Restart  float64 `json:"restart,omitempty"`
	Validate float64 `json:"validate,omitempty"`
	Health   float64 `json:"health,omitempty"`
	Restore  float64 `json:"restore,omitempty"`
}

// StepNames are the steps of Steps, in the order a deploy runs them (the
// step label of the step duration metric).
var StepNames = []string{"drain", "install", "restart", "validate", "health", "restore"}

// Add adds seconds to step (one of StepNames; another name is ignored).
func (s *Steps) Add(step string, seconds float64) {
	switch step {
	case "drain":
		s.Drain += seconds
	case "install":
		s.Install += seconds
	case "restart":
		s.Restart += seconds
	case "validate":
		s.Validate += seconds
	case "health":
		s.Health += seconds
	case "restore":
		s.Restore += seconds
	}
}

// Of returns the seconds of step (one of StepNames).
func (s Steps) Of(step string) float64 {
	switch step {
	case "drain":
		return s.Drain
	case "install":
		return s.Install
	case "restart":
		return s.Restart
	case "validate":
		return s.Validate
	case "health":
		return s.Health
	case "restore":
		return s.Restore
	}
	return 0
}

// String is "drain 3.0s, install 1.2s, ...": the steps that took 0.05 s or
// more (a step with nothing to do, such as validate without a hook, is left
// out).
func (s Steps) String() string {
	var b []byte
	for _, n := range StepNames {
		if v := s.Of(n); v >= 0.05 {
			if len(b) > 0 {
				b = append(b, ", "...)
			}
			b = append(b, n...)
			b = append(b, ' ')
			b = strconv.AppendFloat(b, v, 'f', 1, 64)
			b = append(b, 's')
		}
	}
	return string(b)
}

// New returns an event of kind k with Source and Time set.
func New(k Kind, app, env, version, host string, now time.Time) Deploy {
	return Deploy{Source: Source, Kind: k, App: app, Env: env, Version: version, Host: host, Time: now.UTC()}
}
