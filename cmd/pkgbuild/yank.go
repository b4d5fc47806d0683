package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/internal/event"
)

// newYankCmd returns `pkgbuild yank`.
func newYankCmd() *cobra.Command {
	var (
		f    repoFlags
		ff   fleetFlags
		ann  announceFlags
		dist string
	)
	cmd := &cobra.Command{
		Use:   "yank --repo URL --dist DIST NAME=VERSION...",
		Short: "Remove package versions from a dist's index",
		Long: `yank removes NAME=VERSION (every architecture) from the dist's index. A
version already absent is reported, not an error, so a retried yank succeeds.
Hosts running a yanked version step down to the newest version left at their
next check (--announce: now). The pool file stays until prune finds that no
dist refers to it.

With --redis (or APTFLEET_REDIS_URL) the yank lands in the app/env's history.`,
		Example: `  pkgbuild yank --repo s3://my-bucket/apt --dist production hello=1.4.0-1 --announce 10.0.1.5:7946`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			refs, err := parseRefs(args)
			if err != nil {
				return err
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
			removed, absent, err := r.Remove(ctx, dist, refs)
			if err != nil {
				return oneLine(fmt.Errorf("yank: %w", err))
			}
			yankResult(cmd.OutOrStdout(), dist, removed, absent)
			byApp := map[string][]string{}
			var order []string
			for _, p := range removed {
				if _, ok := byApp[p.Name]; !ok {
					order = append(order, p.Name)
				}
				if vs := byApp[p.Name]; len(vs) == 0 || vs[len(vs)-1] != p.Version {
					byApp[p.Name] = append(vs, p.Version)
				}
			}
			for _, app := range order {
				ev := ff.event(event.Yanked, app, dist, byApp[app][0], "")
				ev.Removed = strings.Join(byApp[app], ",")
				if err := h.record(ctx, &ff, "yanked", ev); err != nil {
					return err
				}
			}
			return oneLine(ann.announce(ctx, cmd.ErrOrStderr(), dist, removed))
		},
	}
	f.register(cmd, true)
	f.registerValidFor(cmd)
	ff.registerRedis(cmd)
	ff.registerChange(cmd)
	ann.register(cmd)
	cmd.Flags().StringVar(&dist, "dist", "", "dist to remove from (required)")
	cmd.Flags().StringVar(&ff.reason, "reason", "", "why (recorded in the history and the event)")
	cmd.MarkFlagRequired("dist")
	return cmd
}
