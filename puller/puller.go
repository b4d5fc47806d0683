package puller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aptfleet/aptfleet/internal/event"
)

// This file is the agent's vocabulary: the records it keeps about a fleet and
// the interfaces of everything it talks to. Child packages implement them
// (puller/redislock the Locker, puller/redisstate the State, puller/apt the
// Installer, puller/systemd the Restarter, puller/lb the Drainer,
// puller/health the Checker, puller/sns the Publisher, puller/gossip the
// Membership and VersionTagger) and assert it at compile time; this package
// imports none of them.

// HostState is what a host's record says it is doing with an app.
type HostState string

// Host states written by the agent.
const (
	StateOK          HostState = "ok"           // running Version, healthy (or nothing to do)
	StateWaiting     HostState = "waiting"      // waiting for a deploy slot for Version
	StateDeploying   HostState = "deploying"    // draining, installing, restarting, checking Version
	StateRollingBack HostState = "rolling_back" // Target failed and changed the host; going back to Version
	StateFailed      HostState = "failed"       // a host fault (quarantined until RetryAt), or a failed rollback (needs a human)
	StateHeld        HostState = "held"         // Target is due but a hold (a pause) keeps the host from starting it
	StateBootstrap   HostState = "bootstrapping"
)

// HostRecord is what a host's record says about one app: the version it
// runs, the version it is moving to (waiting, deploying, held) or failed to
// reach, its state and why.
type HostRecord struct {
	Version string    `json:"version"`          // installed and running ("" when none)
	Target  string    `json:"target,omitempty"` // the version it is waiting for, deploying, held from or failed
	State   HostState `json:"state"`
	Reason  string    `json:"reason,omitempty"` // why it is held or failed
	// RetryAt is when a host quarantined after a host fault tries again.
	RetryAt time.Time `json:"retry_at,omitzero"`
	At      time.Time `json:"at"` // when the record was written (set by the State)
}

// Pause is an operator's hold on an app/env: no host starts a deploy of it
// while it is set (`pkgbuild fleet pause`).
type Pause struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Broken is the mark that stops every host from starting a version: why, who
// saw it fail, and when.
type Broken struct {
	Reason string    `json:"reason"`
	Host   string    `json:"host"`
	At     time.Time `json:"at"`
}

// SeenMark is a broken mark as a host remembers it: the mark, and the
// Guard's Epoch of the Redis data it was last known to be in ("" when this
// host set it and does not know that the write landed).
type SeenMark struct {
	Broken
	Epoch string `json:"epoch"`
}

// MarkMemory is the host's own record of the broken marks it has seen, per
// "app/env", kept outside Redis (statedir.Marks, in state_dir) so that the
// host can put back what Redis lost.
type MarkMemory interface {
	// Marks returns what the host remembers of key ("app/env").
	Marks(key string) (map[string]SeenMark, error)
	// UpdateMarks lets fn change key's marks (version -> mark) under an
	// exclusive lock, and stores them when fn reports a change.
	UpdateMarks(key string, fn func(marks map[string]SeenMark) (changed bool, err error)) error
}

// Rollout is the progress of one version in one app/env.
type Rollout struct {
	Version string
	Total   int // hosts expected (the largest live count seen)
	Done    int // hosts healthy on the version
	Failed  int // hosts that failed it (release failures)
	// HostFailed counts hosts that left the rollout after a host fault; they
	// no longer count toward Total.
	HostFailed int
	// ReleaseFailures is how many distinct hosts had a release failure on
	// the version (it is branded once broken_after did).
	ReleaseFailures int
	Cap             int       // the slot cap applied at the latest admission (0 if none)
	Started         time.Time // zero if unknown
	Finished        time.Time // zero while running
}

// LockRequest names the deploy slot a host asks for.
type LockRequest struct {
	Key  string // "{app}:{env}"
	Host string // the host id: one slot per host
	Cap  int    // how many hosts may hold a slot at once, >= 1
	// SmallestCap turns on the smallest-cap rule: every host taking part
	// (waiting or holding) keeps its view of the cap, and the smallest live
	// view is enforced, so hosts that see different membership counts never
	// admit more than the most cautious of them allows. False applies Cap
	// alone.
	SmallestCap bool
}

// Validate reports a request that no semaphore can serve.
func (r LockRequest) Validate() error {
	switch {
	case r.Key == "":
		return errors.New("puller: lock request: empty key")
	case r.Host == "":
		return fmt.Errorf("puller: lock request %s: empty host id", r.Key)
	case r.Cap < 1:
		return fmt.Errorf("puller: lock request %s: cap %d is below 1", r.Key, r.Cap)
	}
	return nil
}

// Lease is one held deploy slot, renewed in the background until Release or
// loss.
type Lease interface {
	// Context is cancelled when the lease is lost, runs out or is released.
	Context() context.Context
	// Alive reports whether the lease is known to be valid now; checked
	// right before every destructive step.
	Alive() bool
	// Cap is the cap that was applied when the lease was granted.
	Cap() int
	// Release frees the slot if the lease still holds it.
	Release(ctx context.Context) error
}

// Locker hands out the rolling deploy slots.
type Locker interface {
	// Acquire waits for a slot, calling req before every attempt (so the
	// cap follows the live membership).
	Acquire(ctx context.Context, req func() LockRequest) (Lease, error)
	// Arm sets the semaphore's guard when it is missing, so the pause that
	// follows a lost slot set runs while the fleet is idle, and reports
	// what the guard says.
	Arm(ctx context.Context, key string) (Guard, error)
}

// Guard is what the semaphore's guard says about one app/env's data in
// Redis.
type Guard struct {
	// Pause is how long admissions still pause after the semaphore found its
	// slot set lost or served by another Redis (0 when none).
	Pause time.Duration
	// Epoch names the life of the Redis data the app/env's keys live in. It
	// changes when the semaphore finds the slot set lost (a FLUSHALL, a
	// restart without persistence; also its first use) or served by another
	// Redis (a restart, a failover), and at no other time. A host that reads
	// another Epoch than the one it saw marks under knows that Redis may
	// have forgotten them.
	Epoch string
}

// State is where the fleet's deploy state lives: broken marks, pauses, host
// records and rollouts.
type State interface {
	Broken(ctx context.Context, app, env string) (map[string]Broken, error)
	IsBroken(ctx context.Context, app, env, version string) (*Broken, error)
	// MarkBroken sets the mark unless one exists (the first wins) and ends
	// the version's rollout; it reports whether this call set it.
	MarkBroken(ctx context.Context, app, env, version string, b Broken) (bool, error)
	// ReleaseFailure counts b.Host's release failure on version (once per
	// host) and marks the version broken with b once brokenAfter distinct
	// hosts had one. It returns the rollout afterwards and whether this call
	// set the mark.
	ReleaseFailure(ctx context.Context, app, env, version string, b Broken, brokenAfter int) (Rollout, bool, error)
	// Paused returns app/env's pause, nil when it is not paused.
	Paused(ctx context.Context, app, env string) (*Pause, error)
	// Host reads host's record, nil when it has none.
	Host(ctx context.Context, app, env, host string) (*HostRecord, error)
	// RecordHost writes host's record (its At is set to now).
	RecordHost(ctx context.Context, app, env, host string, r HostRecord) error
	// RestoreBroken puts back marks that Redis lost, each unless the
	// version is marked already; it touches nothing else.
	RestoreBroken(ctx context.Context, app, env string, marks map[string]Broken) error
	StartRollout(ctx context.Context, app, env, version string, alive int) error
	// RecordCap records the cap a lease for version was granted under.
	RecordCap(ctx context.Context, app, env, version string, cap int) error
	FinishHost(ctx context.Context, app, env, version string, ok bool) (Rollout, error)
	// LeaveRollout takes a host out of version's rollout after a host
	// fault: it counts in HostFailed, no longer toward Total.
	LeaveRollout(ctx context.Context, app, env, version string) (Rollout, error)
	// Rollout reads version's rollout (the zero Rollout when never started).
	Rollout(ctx context.Context, app, env, version string) (Rollout, error)
	// StepDown records that a host goes back to version, older than the one
	// it runs (a rollback or a yank took the newer one out of the index):
	// the first host to step down after version's rollout finished, or after
	// a rollout that was not a step down, starts it anew; the others count
	// in it as StartRollout does.
	StepDown(ctx context.Context, app, env, version string, alive int) error
	// JoinRollout counts a host that bootstrapped straight onto version in
	// version's rollout, as one more host done, when that rollout is
	// running; joined is false, and nothing is written, when it is not.
	JoinRollout(ctx context.Context, app, env, version string) (r Rollout, joined bool, err error)
	// Record appends one of a host's deploy events (its outcome) to the
	// app/env's history.
	Record(ctx context.Context, e event.Deploy) error
}

// Installer runs apt-get/dpkg on the host.
type Installer interface {
	// Installed returns pkg's installed version, "" when it is not installed.
	Installed(ctx context.Context, pkg string) (version string, err error)
	// Install installs exactly pkg=version (downgrades allowed, conffiles kept).
	Install(ctx context.Context, pkg, version string) error
}

// Restarter restarts an app's systemd units.
type Restarter interface {
	Restart(ctx context.Context, app string) error
}

// Drainer takes this host out of, and back into, the load balancer.
type Drainer interface {
	// Drain returns when the host is drained or the drain time passed.
	Drain(ctx context.Context) error
	// Restore puts the host back in service.
	Restore(ctx context.Context) error
}

// Checker is the app's health check: nil when healthy.
type Checker interface {
	Check(ctx context.Context) error
}

// Publisher sends deploy events (to SNS); the agent always logs them too.
type Publisher interface {
	Publish(ctx context.Context, e event.Deploy) error
}

// Index reads one distribution of an app's apt repository.
type Index interface {
	// Check makes one conditional request for dist's InRelease: changed is
	// false, and nothing else is fetched, when its ETag is still etag.
	Check(ctx context.Context, dist, etag string) (changed bool, newETag string, err error)
	// Versions lists pkg's versions in dist's signature-verified index,
	// with the index's Valid-Until.
	Versions(ctx context.Context, dist, pkg string) (Listing, error)
}

// Listing is what one verified read of a dist's index says about a package.
type Listing struct {
	Versions   []string  // the package's versions in the dist
	ValidUntil time.Time // the InRelease's Valid-Until; zero when it has none
}

// Membership counts the live hosts of an app/env (the Serf members tagged with them).
type Membership interface {
	Alive(app, env string) int
}

// VersionTagger is told the version a host now runs (Serf tags); optional.
type VersionTagger interface {
	SetVersion(app, version string) error
}
