package puller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// AppPlan is what the next cycle would do about one app, and why.
type AppPlan struct {
	App  string `json:"app"`
	Env  string `json:"env"`
	Dist string `json:"dist"`
	// Decision is Decide's answer: running, newest, target, action, every
	// version skipped with its reason, the holds in force and what the next
	// cycle would do.
	Decision
	// Host is this host's record in Redis, nil when it has none.
	Host *HostRecord `json:"host,omitempty"`
	// Notes add what the record and the rollout tell: waiting for a slot,
	// a rollout in doubt (cap 1).
	Notes []string `json:"notes,omitempty"`
	// Refused is set when the index was refused (a stale or foreign signed
	// index): the host keeps its version.
	Refused string `json:"refused,omitempty"`
}

// Plan reads, for every app, the signed index, the broken marks, the pause,
// the deploy window, this host's record, the target's canary stage and its
// rollout, and applies Decide. It writes
// nothing: no Redis write, no apt-get run, no state file write (the index
// is read through IndexPeeker when the Index has it). A refused index is
// reported in its app's plan; any other read failure (Redis, a state file
// that cannot be read or decoded) is returned.
func (a *Agent) Plan(ctx context.Context) ([]AppPlan, error) {
	var out []AppPlan
	for _, ar := range a.apps {
		p, err := a.plan(ctx, ar)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", ar.Name, ar.Env, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (a *Agent) plan(ctx context.Context, ar *appRun) (AppPlan, error) {
	p := AppPlan{App: ar.Name, Env: ar.Env, Dist: ar.Dist}
	running, err := ar.Installer.Installed(ctx, ar.Name)
	if err != nil {
		return p, fmt.Errorf("installed version of %s: %w", ar.Name, err)
	}
	st := a.deps.State
	if p.Host, err = st.Host(ctx, ar.Name, ar.Env, a.host); err != nil {
		return p, err
	}
	var listing Listing
	if pk, ok := ar.Index.(IndexPeeker); ok {
		listing, err = pk.PeekVersions(ctx, ar.Dist, ar.Name)
	} else {
		listing, err = ar.Index.Versions(ctx, ar.Dist, ar.Name)
	}
	versions := listing.Versions
	var stale *StaleIndexError
	switch {
	case errors.As(err, &stale):
		p.Decision = Decision{Running: running, Action: ActionStay,
			Next: fmt.Sprintf("stay on %s: the index was refused", running)}
		p.Refused = stale.Error()
		return p, nil
	case err != nil:
		return p, err
	}
	broken, err := st.Broken(ctx, ar.Name, ar.Env)
	if err != nil {
		return p, err
	}
	var holds []Hold
	if r := p.Host; r != nil && r.State == StateFailed && r.RetryAt.After(a.now()) {
		holds = append(holds, Hold{Kind: HoldQuarantine, Reason: r.Reason, Until: r.RetryAt})
	}
	pause, err := st.Paused(ctx, ar.Name, ar.Env)
	if err != nil {
		return p, err
	}
	if pause != nil {
		holds = append(holds, pauseHold(pause))
	}
	if h := a.windowHold(ar); h != nil {
		holds = append(holds, *h)
	}
	p.Decision = Decide(Situation{Running: running, Index: versions, Broken: broken, Holds: holds}, a.deps.Compare)
	if !p.Moves() {
		return p, nil
	}
	if p.Start() {
		h, err := a.canaryHold(ctx, ar, p.Target)
		if err != nil {
			return p, err
		}
		if h != nil {
			p.Held = append(p.Held, *h)
			p.Next = fmt.Sprintf("hold: would move to %s, but %s", p.Target, h)
		}
	}
	if r := p.Host; r != nil && r.State == StateWaiting && r.Target == p.Target {
		p.Notes = append(p.Notes, fmt.Sprintf("this host is waiting for a deploy slot for %s (since %s)", r.Target, r.At.UTC().Format(time.RFC3339)))
	}
	r, err := st.Rollout(ctx, ar.Name, ar.Env, p.Target)
	if err != nil {
		return p, err
	}
	if Doubtful(r, a.cfg.BrokenAfter, false) {
		p.Notes = append(p.Notes, fmt.Sprintf("rollout of %s in doubt: %d host(s) had a release failure, %d of %d (broken_after) succeeded; slots are capped at 1",
			p.Target, r.ReleaseFailures, r.Done, a.cfg.BrokenAfter))
	}
	return p, nil
}

// WritePlan writes plans as text, one block per app.
func WritePlan(w io.Writer, plans []AppPlan) {
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s/%s (dist %s)\n", p.App, p.Env, p.Dist)
		row := func(k, v string) { fmt.Fprintf(w, "  %-8s %s\n", k, v) }
		row("running", dash(p.Running))
		if p.Refused != "" {
			row("refused", p.Refused)
		} else {
			row("newest", dash(p.Newest))
			row("target", dash(p.Target))
		}
		for _, s := range p.Skipped {
			row("skipped", s.Version+": "+s.Reason)
		}
		for _, h := range p.Held {
			row("held", h.String())
		}
		if r := p.Host; r != nil {
			rec := string(r.State) + " on " + dash(r.Version)
			if r.Target != "" {
				rec += " -> " + r.Target
			}
			if r.Reason != "" {
				rec += ": " + r.Reason
			}
			row("record", rec)
		}
		for _, n := range p.Notes {
			row("note", n)
		}
		row("next", p.Next)
	}
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
