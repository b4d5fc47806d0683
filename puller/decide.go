package puller

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// HoldKind names what keeps a host from starting a deploy.
type HoldKind string

// Holds. A hold only stops a host from starting a move; it never moves a
// host, and a host that started its move finishes it.
const (
	HoldPause      HoldKind = "paused"      // an operator paused the app/env
	HoldQuarantine HoldKind = "quarantined" // this host had a host fault; it retries at Until
)

// Hold is one reason a host may not start a deploy now.
type Hold struct {
	Kind   HoldKind  `json:"kind"`
	Reason string    `json:"reason"`
	Until  time.Time `json:"until,omitzero"` // when it lifts by itself, if it does
}

func (h Hold) String() string {
	s := string(h.Kind)
	if h.Reason != "" {
		s += ": " + h.Reason
	}
	if !h.Until.IsZero() {
		s += " (until " + h.Until.UTC().Format(time.RFC3339) + ")"
	}
	return s
}

// Situation is everything Decide looks at, read by the caller: the host's
// running version, the signed index and what Redis and the host hold.
type Situation struct {
	Running string            // installed version, "" when none
	Index   []string          // versions in the dist's signed, fresh index
	Broken  map[string]Broken // broken marks of the app/env
	Holds   []Hold            // holds in force (bootstrap passes none)
}

// Action is what a host does about its app.
type Action string

// Actions.
const (
	ActionStay     Action = "stay"      // the host runs its target, or has no move to make
	ActionInstall  Action = "install"   // nothing installed: install the target
	ActionUpgrade  Action = "upgrade"   // move up to a newer version
	ActionStepDown Action = "step down" // the running version left the signed index: move down
	ActionNone     Action = "none"      // nothing installed and no installable version
)

// Skip is a version of the index the decision passed over, and why.
type Skip struct {
	Version string  `json:"version"`
	Reason  string  `json:"reason"`
	Broken  *Broken `json:"broken,omitempty"`
}

// Decision is what Decide concludes.
type Decision struct {
	Running string `json:"running"`
	Newest  string `json:"newest"` // the newest version in the signed index ("" when empty)
	// Target is the version the host should run: the newest listed version
	// not marked broken, never below Running while the index lists Running.
	// "" when there is none.
	Target string `json:"target"`
	Action Action `json:"action"`
	// Skipped lists every listed version newer than Target passed over, with
	// its reason; and Running when it is marked broken (the host stays).
	Skipped []Skip `json:"skipped,omitempty"`
	// Held lists the holds that keep the host from starting its move now
	// (empty when Action is stay or none).
	Held []Hold `json:"held,omitempty"`
	// Next says in one sentence what the next cycle would do.
	Next string `json:"next"`
}

// Start reports whether the host should start moving to Target now.
func (d Decision) Start() bool { return d.Moves() && len(d.Held) == 0 }

// Moves reports whether Target differs from what runs (held or not).
func (d Decision) Moves() bool {
	return d.Action == ActionInstall || d.Action == ActionUpgrade || d.Action == ActionStepDown
}

// Decide picks a host's target from the signed index, and says what it
// skipped and why. It is the rule that cycles, bootstrap and plan share:
//
//   - only the signed index moves a host: the target is the newest listed
//     version not marked broken, never below the running version while the
//     index still lists it. A broken mark only stops a host from starting a
//     version: a host already running a marked version stays on it;
//   - a host steps down only when the index no longer lists its version,
//     to the newest listed version not marked broken;
//   - a hold (a pause, a quarantine) stops a host from starting any move,
//     never moves it.
//
// compare orders versions as dpkg does. Decide reads nothing and writes
// nothing: the caller gathers the Situation.
func Decide(s Situation, compare func(a, b string) int) Decision {
	d := Decision{Running: s.Running, Action: ActionStay}
	versions := slices.Clone(s.Index)
	slices.SortFunc(versions, func(a, b string) int { return compare(b, a) }) // newest first
	versions = slices.Compact(versions)
	if len(versions) > 0 {
		d.Newest = versions[0]
	}
	listed := s.Running != "" && slices.Contains(versions, s.Running)
	for _, v := range versions {
		if listed && compare(v, s.Running) <= 0 {
			break
		}
		if b, bad := s.Broken[v]; bad {
			d.Skipped = append(d.Skipped, Skip{Version: v, Reason: "marked broken: " + brokenText(b), Broken: &b})
			continue
		}
		d.Target = v
		break
	}
	if d.Target == "" && listed {
		d.Target = s.Running
	}
	if b, bad := s.Broken[s.Running]; bad && d.Target == s.Running {
		d.Skipped = append(d.Skipped, Skip{Version: s.Running, Broken: &b,
			Reason: "running, marked broken since (" + brokenText(b) + "); stays on it until the index drops it"})
	}
	switch {
	case d.Target == "" && s.Running == "":
		d.Action = ActionNone
	case d.Target == "" || d.Target == s.Running:
		d.Action = ActionStay
	case s.Running == "":
		d.Action = ActionInstall
	case compare(d.Target, s.Running) > 0:
		d.Action = ActionUpgrade
	default:
		d.Action = ActionStepDown
	}
	if d.Moves() {
		d.Held = slices.Clone(s.Holds)
	}
	d.Next = d.next(listed)
	return d
}

func (d Decision) next(listed bool) string {
	switch d.Action {
	case ActionNone:
		if d.Newest == "" {
			return "nothing: the index lists no version"
		}
		return "nothing: every listed version is marked broken"
	case ActionStay:
		if d.Running != "" && !listed {
			return fmt.Sprintf("stay on %s: the index no longer lists it, and no listed version is installable", d.Running)
		}
		return fmt.Sprintf("stay on %s", d.Running)
	}
	verb := map[Action]string{ActionInstall: "install", ActionUpgrade: "upgrade to", ActionStepDown: "step down to"}[d.Action]
	if d.Action == ActionStepDown {
		verb = fmt.Sprintf("step down to %s (%s left the index)", d.Target, d.Running)
	} else {
		verb += " " + d.Target
	}
	if len(d.Held) > 0 {
		holds := make([]string, len(d.Held))
		for i, h := range d.Held {
			holds[i] = h.String()
		}
		return fmt.Sprintf("hold: would %s, but %s", verb, strings.Join(holds, "; "))
	}
	return verb + " under the rolling lock"
}

func brokenText(b Broken) string {
	s := b.Reason
	if s == "" {
		s = "no reason given"
	}
	if b.Host != "" {
		s += ", host " + b.Host
	}
	if !b.At.IsZero() {
		s += ", " + b.At.UTC().Format(time.RFC3339)
	}
	return s
}

// Doubtful reports whether a version's rollout is in doubt: a host had a
// release failure on it, it is not marked broken, and it has not yet
// succeeded on brokenAfter hosts. A doubtful rollout goes on one host at a
// time (cap 1).
func Doubtful(r Rollout, brokenAfter int, broken bool) bool {
	return !broken && r.ReleaseFailures > 0 && r.Done < brokenAfter
}
