package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller/redisstate"
	"github.com/aptfleet/aptfleet/repo"
)

// history records repository changes in the app/env's history when a Redis
// is given (--redis or APTFLEET_REDIS_URL); without one it does nothing.
type history struct {
	st    *redisstate.Store
	close func()
}

// openHistory connects before the change, so an unreachable Redis stops the
// command with nothing changed.
func (f *fleetFlags) openHistory(ctx context.Context) (*history, error) {
	if f.redisURL == "" {
		return &history{}, nil
	}
	st, closeFn, err := f.connect(ctx)
	if err != nil {
		return nil, err
	}
	return &history{st: st, close: closeFn}, nil
}

func (h *history) Close() {
	if h.close != nil {
		h.close()
	}
}

// record appends ev to the history and sends it to SNS; the change is made,
// so a failure says so.
func (h *history) record(ctx context.Context, f *fleetFlags, done string, ev event.Deploy) error {
	if h.st != nil {
		if err := h.st.Record(ctx, ev); err != nil {
			return fmt.Errorf("%s, but not recorded in the history: %w", done, err)
		}
	}
	return f.emit(ctx, done, ev)
}

// newRollbackCmd returns `pkgbuild rollback`.
func newRollbackCmd() *cobra.Command {
	var (
		f        repoFlags
		ff       fleetFlags
		ann      announceFlags
		dist, to string
	)
	cmd := &cobra.Command{
		Use:   "rollback --repo URL --dist DIST APP [--to VERSION]",
		Short: "Take the newest version of an app out of a dist: the fleet steps down",
		Long: `rollback is a signed index change: it takes APP's newest version (or, with
--to, every version newer than VERSION) out of DIST. Hosts running a removed
version step down to the newest version left, one slot at a time under the
usual lock, drain and health check; --announce makes them check now instead
of at their next tick. It refuses when no version would be left, and prints
what the fleet will run.

With --redis (or APTFLEET_REDIS_URL) the rollback lands in the app/env's
history, with its actor and reason.`,
		Example: `  pkgbuild rollback --repo s3://my-bucket/apt --dist production hello --reason "checkout errors"
  pkgbuild rollback --repo s3://my-bucket/apt --dist production hello --to 1.3.2-1 --announce 10.0.1.5:7946`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := args[0]
			if err := repo.CheckDist(dist); err != nil {
				return fmt.Errorf("--dist: %w", err)
			}
			r, err := f.open(ctx, true, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			if err := ff.prepare(ctx); err != nil {
				return err
			}
			h, err := ff.openHistory(ctx)
			if err != nil {
				return err
			}
			defer h.Close()
			res, err := r.Rollback(ctx, dist, app, to)
			if err != nil {
				return oneLine(fmt.Errorf("rollback: %w", err))
			}
			w := cmd.OutOrStdout()
			for _, p := range res.Removed {
				fmt.Fprintf(w, "removed %s from %s\n", p, dist)
			}
			fmt.Fprintf(w, "the fleet will run %s %s in %s: hosts on %s step down one slot at a time\n",
				app, res.Target, dist, strings.Join(res.Versions, ", "))
			ev := ff.event(event.Rollback, app, dist, res.Target, "")
			ev.Previous, ev.Removed = res.Versions[0], strings.Join(res.Versions, ",")
			if err := h.record(ctx, &ff, "rolled back", ev); err != nil {
				return err
			}
			return oneLine(ann.announce(ctx, cmd.ErrOrStderr(), dist, res.Removed[:1]))
		},
	}
	f.register(cmd, true)
	ff.registerRedis(cmd)
	ff.registerChange(cmd)
	ann.register(cmd)
	cmd.Flags().StringVar(&dist, "dist", "", "dist to roll back (required)")
	cmd.Flags().StringVar(&to, "to", "", "roll back to this version: every newer one is removed (default: remove the newest only)")
	cmd.Flags().StringVar(&ff.reason, "reason", "", "why (recorded in the history and the event)")
	cmd.MarkFlagRequired("dist")
	return cmd
}

// yankResult prints what Remove did.
func yankResult(w io.Writer, dist string, removed []repo.Package, absent []repo.Ref) {
	for _, p := range removed {
		fmt.Fprintf(w, "yanked %s from %s\n", p, dist)
	}
	for _, ref := range absent {
		fmt.Fprintf(w, "%s already absent from %s\n", ref, dist)
	}
}
