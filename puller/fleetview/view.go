// Package fleetview is the operator's view of the fleet, read from the state
// the agents keep in Redis: one model, rendered as text (`puller status
// --fleet`, `pkgbuild fleet status`), JSON (`--json`) and HTML (`pkgbuild
// fleet serve`).
//
// The view survives bad data: a record that does not parse is shown as
// unreadable, a record dated in the future is not live, a rollout hash with
// impossible counts is unreadable, and a key of the wrong type spoils only its
// own app/env. Text from Redis is escaped before it reaches a terminal.
package fleetview

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// Stages of an app/env's latest rollout, as the view names them.
const (
	StageIdle       = "idle"       // no rollout recorded
	StageRolling    = "rolling"    // hosts are taking the version
	StagePaused     = "paused"     // an operator paused the app/env
	StageHalted     = "halted"     // the version was marked broken
	StageDone       = "done"       // every host counted (or every live host) is on it
	StageUnreadable = "unreadable" // the records cannot be read
)

// Options tune Read.
type Options struct {
	// LiveWithin: a host whose record is older than this is gone. Default 10m.
	LiveWithin time.Duration
	// Skew: a record dated more than this after now is not believed (not
	// live). Default 1m.
	Skew time.Duration
	// History is how many history entries to read per app/env (0: none).
	History int
}

// Host is one host's record.
type Host struct {
	Name    string    `json:"name"`
	Version string    `json:"version,omitempty"`
	Target  string    `json:"target,omitempty"` // the version it is deploying, when known
	State   string    `json:"state,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
	Live    bool      `json:"live"`
	// Future: the record is dated after now (a host's clock is wrong).
	Future bool `json:"future,omitempty"`
	// Unreadable holds the raw record when it does not parse.
	Unreadable string `json:"unreadable,omitempty"`
}

// Rollout is one version's rollout.
type Rollout struct {
	Version    string    `json:"version"`
	Total      int       `json:"total"`
	Done       int       `json:"done"`
	Failed     int       `json:"failed"`
	HostFailed int       `json:"host_failed,omitempty"`
	Cap        int       `json:"cap,omitempty"`
	Stage      string    `json:"stage,omitempty"` // as recorded by the agents (canary stages), if any
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	// Unreadable says why the hash cannot be trusted (then the counts are 0).
	Unreadable string `json:"unreadable,omitempty"`
}

// Broken is one broken mark.
type Broken struct {
	Version string    `json:"version"`
	Reason  string    `json:"reason"`
	Host    string    `json:"host,omitempty"`
	At      time.Time `json:"at"`
}

// VersionCount is how many live hosts run a version.
type VersionCount struct {
	Version string `json:"version"`
	Hosts   int    `json:"hosts"`
}

// Env is the view of one app/env.
type Env struct {
	App string `json:"app"`
	Env string `json:"env"`
	// Err says why (part of) the app/env could not be read; the rest of the
	// view is what could be.
	Err      string            `json:"error,omitempty"`
	Stage    string            `json:"stage"`
	Latest   *Rollout          `json:"rollout,omitempty"` // the most recently started rollout
	LiveDone bool              `json:"live_done,omitempty"`
	Broken   []Broken          `json:"broken,omitempty"`
	Pause    *redisstate.Pause `json:"pause,omitempty"`
	Hosts    []Host            `json:"hosts"`
	// Forgotten is how many host records this read dropped: not rewritten
	// for forget_after.
	Forgotten int            `json:"forgotten,omitempty"`
	Versions  []VersionCount `json:"versions"` // live hosts per version, most first
	Warning   string         `json:"warning,omitempty"`
	History   []Entry        `json:"history,omitempty"`
}

// Entry is one history entry.
type Entry = redisstate.Entry

// Read builds the view of envs (every app/env in Redis when envs is nil) as
// of now. It fails only when Redis cannot be reached.
func Read(ctx context.Context, st *redisstate.Store, envs []redisstate.AppEnv, now time.Time, opts Options) ([]Env, error) {
	if opts.LiveWithin <= 0 {
		opts.LiveWithin = 10 * time.Minute
	}
	if opts.Skew <= 0 {
		opts.Skew = time.Minute
	}
	if envs == nil {
		var err error
		if envs, err = st.AppEnvs(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]Env, 0, len(envs))
	for _, ae := range envs {
		raw, err := st.ReadRaw(ctx, ae.App, ae.Env)
		if err != nil {
			return nil, err
		}
		e := build(raw, now, opts)
		if opts.History > 0 {
			h, err := st.History(ctx, ae.App, ae.Env, opts.History)
			if err != nil && e.Err == "" {
				e.Err = err.Error()
			}
			e.History = h
		}
		out = append(out, e)
	}
	return out, nil
}

// hostRecord is the JSON an agent writes per host.
type hostRecord struct {
	Version string    `json:"version"`
	Target  string    `json:"target"`
	State   string    `json:"state"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

func build(raw redisstate.Raw, now time.Time, opts Options) Env {
	e := Env{App: raw.App, Env: raw.Env, Hosts: []Host{}, Versions: []VersionCount{}}
	var errs []string
	for _, err := range raw.Errs {
		errs = append(errs, err.Error())
	}
	e.Err = strings.Join(errs, "; ")
	e.Forgotten = raw.Forgotten

	versions := map[string]int{}
	for name, rec := range raw.Hosts {
		h := Host{Name: name}
		var r hostRecord
		dec := json.NewDecoder(strings.NewReader(rec))
		if err := dec.Decode(&r); err != nil || r.At.IsZero() {
			h.Unreadable = rec
		} else {
			h.Version, h.Target, h.State, h.Reason, h.At = r.Version, r.Target, r.State, r.Reason, r.At
			age := now.Sub(r.At)
			h.Future = age < -opts.Skew
			h.Live = !h.Future && age <= opts.LiveWithin
		}
		if h.Live {
			versions[h.Version]++
		}
		e.Hosts = append(e.Hosts, h)
	}
	sort.Slice(e.Hosts, func(i, j int) bool { return e.Hosts[i].Name < e.Hosts[j].Name })
	for v, n := range versions {
		e.Versions = append(e.Versions, VersionCount{v, n})
	}
	sort.Slice(e.Versions, func(i, j int) bool {
		if e.Versions[i].Hosts != e.Versions[j].Hosts {
			return e.Versions[i].Hosts > e.Versions[j].Hosts
		}
		return e.Versions[i].Version < e.Versions[j].Version
	})

	for v, rec := range raw.Broken {
		b := Broken{Version: v}
		var m struct {
			Reason string    `json:"reason"`
			Host   string    `json:"host"`
			At     time.Time `json:"at"`
		}
		if err := json.Unmarshal([]byte(rec), &m); err != nil {
			b.Reason = rec // written by hand: the text is the reason
		} else {
			b.Reason, b.Host, b.At = m.Reason, m.Host, m.At
		}
		e.Broken = append(e.Broken, b)
	}
	sort.Slice(e.Broken, func(i, j int) bool { return e.Broken[i].Version < e.Broken[j].Version })

	if raw.Pause != nil {
		var p redisstate.Pause
		if err := json.Unmarshal([]byte(*raw.Pause), &p); err != nil {
			p = redisstate.Pause{Reason: *raw.Pause}
		}
		e.Pause = &p
	}

	var rollouts []Rollout
	for v, m := range raw.Rollouts {
		rollouts = append(rollouts, parseRollout(v, m))
	}
	sort.Slice(rollouts, func(i, j int) bool {
		if !rollouts[i].Started.Equal(rollouts[j].Started) {
			return rollouts[i].Started.After(rollouts[j].Started)
		}
		return rollouts[i].Version > rollouts[j].Version
	})
	if len(rollouts) > 0 {
		e.Latest = &rollouts[0]
	}
	if r := e.Latest; r != nil && r.Unreadable == "" && r.Finished.IsZero() && len(versions) == 1 && versions[r.Version] > 0 {
		e.LiveDone = true
		for _, h := range e.Hosts {
			e.LiveDone = e.LiveDone && (!h.Live || h.State == "ok")
		}
	}
	ended := e.Latest == nil || !e.Latest.Finished.IsZero() || e.LiveDone
	if len(versions) > 1 && ended {
		list := make([]string, 0, len(versions))
		for _, vc := range e.Versions {
			list = append(list, fmt.Sprintf("%s on %d", vc.Version, vc.Hosts))
		}
		sort.Strings(list)
		e.Warning = fmt.Sprintf("%d versions running after the rollout ended: %s", len(versions), strings.Join(list, ", "))
	}
	e.Stage = stage(e)
	return e
}

func stage(e Env) string {
	r := e.Latest
	halted := false
	if r != nil {
		for _, b := range e.Broken {
			halted = halted || b.Version == r.Version
		}
		halted = halted || (r.Unreadable == "" && !r.Finished.IsZero() && r.Failed > 0)
	}
	switch {
	case e.Err != "" && len(e.Hosts) == 0 && r == nil:
		return StageUnreadable
	case e.Pause != nil && (r == nil || (r.Finished.IsZero() && !e.LiveDone)):
		return StagePaused
	case r == nil:
		return StageIdle
	case r.Unreadable != "":
		return StageUnreadable
	case halted:
		return StageHalted
	case !r.Finished.IsZero() || e.LiveDone:
		return StageDone
	case r.Stage != "":
		return r.Stage
	}
	return StageRolling
}

// maxCount bounds the counts a rollout hash may hold; beyond it the hash is
// garbage, not a fleet.
const maxCount = 1 << 20

func parseRollout(version string, m map[string]string) Rollout {
	r := Rollout{Version: version, Stage: m["stage"]}
	var bad []string
	num := func(field string, dst *int) {
		s, ok := m[field]
		if !ok || s == "" {
			return
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxCount {
			bad = append(bad, fmt.Sprintf("%s=%s", field, Clean(s)))
			return
		}
		*dst = n
	}
	at := func(field string, dst *time.Time) {
		s, ok := m[field]
		if !ok || s == "" {
			return
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s=%s", field, Clean(s)))
			return
		}
		*dst = t
	}
	num("total", &r.Total)
	num("done", &r.Done)
	num("failed", &r.Failed)
	num("host_failed", &r.HostFailed)
	num("cap", &r.Cap)
	at("started", &r.Started)
	at("finished", &r.Finished)
	if len(bad) > 0 {
		sort.Strings(bad)
		started := r.Started
		r = Rollout{Version: version, Started: started, Unreadable: strings.Join(bad, ", ")}
	}
	return r
}

// Clean makes text from Redis safe to print: a string holding control
// characters or invalid UTF-8 is shown quoted, with those escaped.
func Clean(s string) string {
	if !utf8.ValidString(s) {
		return strconv.QuoteToASCII(s)
	}
	for _, c := range s {
		if unicode.IsControl(c) || c == '\u2028' || c == '\u2029' || unicode.Is(unicode.Bidi_Control, c) {
			return strconv.Quote(s)
		}
	}
	return s
}
