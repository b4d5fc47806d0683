package redisstate

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/puller"
)

// HaltedError says a rollout stopped because its version was marked broken.
type HaltedError struct {
	App, Env, Version string
	Broken            puller.Broken
}

func (e *HaltedError) Error() string {
	return fmt.Sprintf("rollout of %s/%s %s halted: %s (host %s, %s)", e.App, e.Env, e.Version,
		e.Broken.Reason, e.Broken.Host, e.Broken.At.UTC().Format(time.RFC3339))
}

// WaitOptions tune WaitRollout.
type WaitOptions struct {
	// LiveWithin: a host whose record is older than this is gone (every agent
	// rewrites its record at each tick). Default 10m.
	LiveWithin time.Duration
	// Poll is the pause between reads. Default 2s.
	Poll time.Duration
	// Progress, when set, is called after every read.
	Progress func(EnvStatus)
}

// WaitRollout blocks until every live host of app/env runs version and is
// healthy (state ok), with at least one live host, and returns the rollout.
// It returns a *HaltedError as soon as version is marked broken, and ctx's
// error when ctx ends first. This is what `pkgbuild promote --wait-rollout`
// waits on before promoting.
func (s *Store) WaitRollout(ctx context.Context, app, env, version string, opts WaitOptions) (puller.Rollout, error) {
	if opts.Poll <= 0 {
		opts.Poll = 2 * time.Second
	}
	t := time.NewTicker(opts.Poll)
	defer t.Stop()
	for {
		st, err := s.Status(ctx, app, env, opts.LiveWithin)
		if err != nil {
			return puller.Rollout{}, err
		}
		if opts.Progress != nil {
			opts.Progress(st)
		}
		if b, ok := st.Broken[version]; ok {
			return puller.Rollout{}, &HaltedError{App: app, Env: env, Version: version, Broken: b}
		}
		live, on := 0, 0
		for _, h := range st.Hosts {
			if !h.Live {
				continue
			}
			live++
			if h.Version == version && h.State == puller.StateOK {
				on++
			}
		}
		if live > 0 && on == live {
			return s.Rollout(ctx, app, env, version)
		}
		select {
		case <-ctx.Done():
			return puller.Rollout{}, fmt.Errorf("wait for rollout of %s/%s %s (%d of %d live hosts done): %w",
				app, env, version, on, live, ctx.Err())
		case <-t.C:
		}
	}
}

// HostRow is one host in a status table.
type HostRow struct {
	Name string
	Host
	Live bool // seen within the live window
}

// EnvStatus is the state of one app/env, as `puller status --fleet` shows it.
type EnvStatus struct {
	AppEnv
	Hosts  []HostRow                // sorted by name
	Broken map[string]puller.Broken // version -> mark
	Latest *puller.Rollout          // the most recently started rollout, nil if none
	// LiveDone: every live host runs Latest's version in state ok, though
	// the rollout has not finished (hosts counted in its total are gone).
	LiveDone bool
	Warning  string // set when live hosts disagree on the version after the latest rollout ended
}

// Status reads app/env's hosts, broken marks and latest rollout. Hosts seen
// longer than liveWithin ago (default 10m) are listed but not Live.
func (s *Store) Status(ctx context.Context, app, env string, liveWithin time.Duration) (EnvStatus, error) {
	if liveWithin <= 0 {
		liveWithin = 10 * time.Minute
	}
	st := EnvStatus{AppEnv: AppEnv{app, env}}
	hosts, err := s.Hosts(ctx, app, env)
	if err != nil {
		return st, err
	}
	if st.Broken, err = s.Broken(ctx, app, env); err != nil {
		return st, err
	}
	rollouts, err := s.Rollouts(ctx, app, env)
	if err != nil {
		return st, err
	}
	if len(rollouts) > 0 {
		st.Latest = &rollouts[0]
	}
	now := s.now()
	versions := map[string]int{}
	for name, h := range hosts {
		live := now.Sub(h.At) <= liveWithin
		st.Hosts = append(st.Hosts, HostRow{Name: name, Host: h, Live: live})
		if live {
			versions[h.Version]++
		}
	}
	sort.Slice(st.Hosts, func(i, j int) bool { return st.Hosts[i].Name < st.Hosts[j].Name })
	if r := st.Latest; r != nil && r.Finished.IsZero() && len(versions) == 1 && versions[r.Version] > 0 {
		st.LiveDone = true
		for _, h := range st.Hosts {
			st.LiveDone = st.LiveDone && (!h.Live || h.State == puller.StateOK)
		}
	}
	if len(versions) > 1 && (st.Latest == nil || !st.Latest.Finished.IsZero()) {
		list := make([]string, 0, len(versions))
		for v, n := range versions {
			list = append(list, fmt.Sprintf("%s on %d", v, n))
		}
		sort.Strings(list)
		st.Warning = fmt.Sprintf("%d versions running after the rollout ended: %s", len(versions), strings.Join(list, ", "))
	}
	return st, nil
}
