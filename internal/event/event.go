// Package event is the schema of the deploy events the puller emits and the
// notifier renders. It is shared so the two never disagree on field names.
package event

import "time"

// Source marks a JSON message as an aptfleet deploy event.
const Source = "aptfleet.deploy"

// Kind is what happened.
type Kind string

const (
	Started    Kind = "started"     // a host began installing a version
	Succeeded  Kind = "succeeded"   // a host is healthy on the new version
	Failed     Kind = "failed"      // a host's deploy failed (install or health check)
	RolledBack Kind = "rolled_back" // a host went back to the previous version
	Halted     Kind = "halted"      // a version was marked broken: the rollout stops everywhere
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
	Reason   string    `json:"reason,omitempty"` // why it failed / was halted
	Time     time.Time `json:"time"`
	// Rollout progress when the event was emitted, if known.
	Total  int `json:"total,omitempty"`
	Done   int `json:"done,omitempty"`
	Failed int `json:"failed,omitempty"`
	// Duration of the host's deploy, for succeeded/failed events.
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
}

// New returns an event of kind k with Source and Time set.
func New(k Kind, app, env, version, host string, now time.Time) Deploy {
	return Deploy{Source: Source, Kind: k, App: app, Env: env, Version: version, Host: host, Time: now.UTC()}
}
