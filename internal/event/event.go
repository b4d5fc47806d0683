// Package event is the schema of the deploy events the puller emits and the
// notifier renders. It is shared so the two never disagree on field names.
package event

import "time"

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
}

// New returns an event of kind k with Source and Time set.
func New(k Kind, app, env, version, host string, now time.Time) Deploy {
	return Deploy{Source: Source, Kind: k, App: app, Env: env, Version: version, Host: host, Time: now.UTC()}
}
