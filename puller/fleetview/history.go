package fleetview

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aptfleet/aptfleet/internal/event"
)

// Outcomes of a rollout in the history.
const (
	OutcomeRunning    = "running"
	OutcomeDone       = "done"
	OutcomeHalted     = "halted"
	OutcomeRolledBack = "rolled back"
	OutcomeYanked     = "yanked"
	// OutcomeSuperseded: another rollout started before every host counted
	// in this one finished (a host that died is counted until then).
	OutcomeSuperseded = "superseded"
)

// Past is one rollout as the history tells it.
type Past struct {
	Version string    `json:"version"`
	Actor   string    `json:"promoted_by,omitempty"` // who promoted it, when a promote was recorded
	From    string    `json:"from,omitempty"`        // the dist it was promoted from; "rollback" for a rollback's step down
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"` // why it halted or was rolled back
	// Hosts are the per-host results, in order: "i-1 ok 31.2s", "i-2 failed: ...".
	Hosts []string `json:"hosts,omitempty"`
}

// Rollouts folds history entries (oldest first) into the rollouts they
// tell of, oldest first.
func Rollouts(entries []Entry) []Past {
	var out []*Past
	latest := map[string]*Past{}   // version -> its latest rollout
	promoted := map[string]Entry{} // version -> the promote (or rollback) that made it the target
	// counted is the rollout a host's outcome belongs to: version's latest
	// one while it runs, or when the outcome was counted in it (a host's
	// event comes just after the count that ended the rollout). A first
	// boot, or a new instance after the rollout ended, is in none.
	counted := func(e Entry) *Past {
		if p := latest[e.Version]; p != nil && (p.Outcome == OutcomeRunning || e.Done+e.Failed > 0) {
			return p
		}
		return nil
	}
	get := func(e Entry) *Past {
		if p := latest[e.Version]; p != nil {
			return p
		}
		p := &Past{Version: e.Version, Start: e.Time, Outcome: OutcomeRunning}
		if pr, ok := promoted[e.Version]; ok {
			p.Actor, p.From = pr.Actor, pr.From
		}
		latest[e.Version] = p
		out = append(out, p)
		return p
	}
	for _, e := range entries {
		if e.Unreadable != "" {
			continue
		}
		switch e.Kind {
		case event.Promoted:
			promoted[e.Version] = e
			if p := latest[e.Version]; p != nil && p.Outcome == OutcomeRunning && p.Actor == "" {
				p.Actor, p.From = e.Actor, e.From
			}
		case event.RolloutStarted:
			for _, p := range latest {
				if p.Outcome == OutcomeRunning {
					p.Outcome, p.End = OutcomeSuperseded, e.Time
				}
			}
			delete(latest, e.Version) // a new rollout of the version
			p := get(e)
			p.Start = e.Time
		case event.Succeeded:
			if p := counted(e); p != nil {
				p.Hosts = append(p.Hosts, fmt.Sprintf("%s ok %.1fs", e.Host, e.DurationSeconds)+steps(e.Steps))
			}
		case event.Failed, event.RolledBack, event.Kind("host_failed"):
			if p := counted(e); p != nil {
				line := e.Host + " " + strings.ReplaceAll(string(e.Kind), "_", " ")
				if e.Reason != "" {
					line += ": " + e.Reason
				}
				p.Hosts = append(p.Hosts, line+steps(e.Steps))
			}
		case event.RolloutDone:
			p := get(e)
			p.Outcome, p.End = OutcomeDone, e.Time
		case event.Halted:
			p := get(e)
			p.Outcome, p.End, p.Reason = OutcomeHalted, e.Time, e.Reason
		case event.Unbroken:
			if p := latest[e.Version]; p != nil {
				p.Outcome, p.End = OutcomeRunning, time.Time{}
				p.Hosts = append(p.Hosts, "unbroken by "+e.Actor)
			}
		case event.Rollback, event.Yanked:
			outcome := OutcomeRolledBack
			if e.Kind == event.Yanked {
				outcome = OutcomeYanked
			} else if e.Version != "" {
				// The fleet steps down to e.Version: its next rollout is this
				// rollback's.
				e.From = "rollback"
				promoted[e.Version] = e
			}
			for _, v := range strings.Split(e.Removed, ",") {
				// A halted rollout stays halted: that is how it ended.
				if p := latest[strings.TrimSpace(v)]; p != nil && p.Outcome != OutcomeHalted {
					p.Outcome, p.Reason = outcome+" by "+e.Actor, e.Reason
					if p.End.IsZero() {
						p.End = e.Time
					}
				}
			}
		}
	}
	res := make([]Past, len(out))
	for i, p := range out {
		res[i] = *p
	}
	return res
}

// HistoryText writes the last limit rollouts of an app/env (every one when
// limit <= 0) as a table, then the timeline of entries since the first of them,
// operator actions included.
func HistoryText(w io.Writer, app, env string, entries []Entry, limit int) {
	past := Rollouts(entries)
	if limit > 0 && len(past) > limit {
		past = past[len(past)-limit:]
	}
	fmt.Fprintf(w, "%s/%s: %d rollouts\n", Clean(app), Clean(env), len(past))
	if len(past) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  VERSION\tSTART\tEND\tOUTCOME\tPROMOTED BY")
		for _, p := range past {
			outcome := p.Outcome
			if p.Reason != "" {
				outcome += ": " + p.Reason
			}
			by := dash(p.Actor)
			switch p.From {
			case "":
			case "rollback":
				by += " (rollback)"
			default:
				by += " from " + p.From
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", Clean(p.Version), stamp(p.Start), stamp(p.End), Clean(clip(outcome, 100)), Clean(by))
		}
		tw.Flush()
		for _, p := range past {
			if len(p.Hosts) > 0 {
				fmt.Fprintf(w, "  %s hosts: %s\n", Clean(p.Version), Clean(strings.Join(p.Hosts, "; ")))
			}
		}
	}
	var since time.Time
	if len(past) > 0 && limit > 0 {
		since = past[0].Start
	}
	fmt.Fprintln(w, "  timeline:")
	for _, e := range entries {
		if e.Time.Before(since) {
			continue
		}
		fmt.Fprintf(w, "  %s  %s\n", stamp(e.Time), Clean(Describe(e)))
	}
}

// Describe is one line for a history entry.
func Describe(e Entry) string {
	if e.Unreadable != "" {
		return "unreadable entry " + e.ID + ": " + clip(e.Unreadable, 80)
	}
	var s string
	switch e.Kind {
	case event.RolloutStarted:
		s = "rollout of " + e.Version + " started"
		if e.Host != "" {
			s += " on " + e.Host
		}
	case event.RolloutDone:
		s = fmt.Sprintf("rollout of %s done (%d hosts)", e.Version, e.Done)
	case event.Halted:
		s = fmt.Sprintf("rollout of %s halted (host %s)", e.Version, e.Host)
	case event.Paused, event.Resumed:
		s = string(e.Kind)
	case event.Unbroken:
		s = "unbroken " + e.Version
	case event.Forgotten:
		s = "forgot host " + e.Host
	case event.Promoted:
		s = "promoted " + e.Version
		if e.From != "" {
			s += " from " + e.From
		}
	case event.Yanked:
		s = "yanked " + e.Removed
	case event.Rollback:
		s = fmt.Sprintf("rollback to %s (removed %s)", e.Version, e.Removed)
	default:
		s = fmt.Sprintf("%s %s %s", e.Host, strings.ReplaceAll(string(e.Kind), "_", " "), e.Version)
		if e.DurationSeconds > 0 {
			s += fmt.Sprintf(" in %.1fs", e.DurationSeconds)
		}
		s += steps(e.Steps)
	}
	if e.Actor != "" {
		s += " by " + e.Actor
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// steps is " (drain 3.0s, install 1.2s, ...)", or "" when no step was timed.
func steps(s event.Steps) string {
	if t := s.String(); t != "" {
		return " (" + t + ")"
	}
	return ""
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
