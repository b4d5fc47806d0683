package puller

import (
	"context"
	"time"
)

// This file is the vocabulary of a rollout's canary stage; the agent's side
// of it is in stage.go, the Redis side in puller/redisstate.

// CanaryStage is where a version's canary stage stands, as recorded in its
// rollout.
type CanaryStage string

// Canary stages. Running and Awaiting hold every host that is not a canary;
// Passed and Promoted let them go; Failed and Aborted end the version.
const (
	CanaryNone     CanaryStage = ""                   // no stage recorded yet
	CanaryRunning  CanaryStage = "canary"             // canaries chosen: deploying or baking
	CanaryAwaiting CanaryStage = "awaiting_promotion" // passed, waiting for an operator (promote: manual)
	CanaryPassed   CanaryStage = "passed"             // the bake passed: the rest roll on
	CanaryPromoted CanaryStage = "promoted"           // an operator ended the stage: the rest roll on
	CanaryFailed   CanaryStage = "failed"             // a canary failed: the version is broken
	CanaryAborted  CanaryStage = "aborted"            // an operator failed the stage: the version is broken
)

// Open reports whether the stage lets the non-canary hosts deploy.
func (s CanaryStage) Open() bool { return s == CanaryPassed || s == CanaryPromoted }

// Ended reports whether the stage failed (the version is broken).
func (s CanaryStage) Ended() bool { return s == CanaryFailed || s == CanaryAborted }

// CanaryView is a host's view of a version's canary stage.
type CanaryView struct {
	Stage CanaryStage
	// Canary: the host asking holds a canary place.
	Canary bool
	// New: this call gave the host its place (a Join).
	New bool
	// Want is the number of canaries the stage was opened with.
	Want int
	// Servers are the live canaries' load balancer server names, Ready how
	// many of them are healthy on the version.
	Servers []string
	Ready   int
}

// Canaries records a version's canary stage for the whole fleet (Redis).
// Places are leases: a canary renews its place while it deploys and bakes,
// and a place not renewed within its TTL goes to the next host to Join.
type Canaries interface {
	// Join gives host a canary place for version if it holds one already or
	// one is free (opening the stage with want places when none is
	// recorded); otherwise it changes nothing. server is host's name in the
	// load balancer.
	Join(ctx context.Context, app, env, version, host, server string, want int, ttl time.Duration) (CanaryView, error)
	// Peek is a waiter's cheap read: the stage, whether a place is free (so
	// that a Join is worth making) and whether host holds one. It writes
	// nothing.
	Peek(ctx context.Context, app, env, version, host string) (stage CanaryStage, free, mine bool, err error)
	// Wake delivers a value (without blocking the sender) whenever an
	// app/env's canary stage changes or a place is freed, until ctx ends.
	Wake(ctx context.Context, app, env string) <-chan struct{}
	// Renew extends host's place and reports the stage (Canary false once
	// the place is lost or the stage is over).
	Renew(ctx context.Context, app, env, version, host string, ttl time.Duration) (CanaryView, error)
	// Ready records that host is healthy on version.
	Ready(ctx context.Context, app, env, version, host string) (CanaryView, error)
	// Leave gives host's place up (a host fault: another host takes it).
	Leave(ctx context.Context, app, env, version, host string) error
	// Pass ends a running stage with a passing verdict: CanaryAwaiting when
	// manual, else CanaryPassed. It reports the stage afterwards and whether
	// this call moved it.
	Pass(ctx context.Context, app, env, version, host, verdict string, manual bool) (CanaryStage, bool, error)
	// Fail ends a running or awaiting stage as failed; whether this call did.
	Fail(ctx context.Context, app, env, version, host, reason string) (bool, error)
}

// LoadStats reads the per-server counters of the backend the app's hosts
// serve in (lb.HAProxy), keyed by server name, for the canary analysis.
type LoadStats interface {
	Counters(ctx context.Context) (map[string]ServerCounters, error)
}
