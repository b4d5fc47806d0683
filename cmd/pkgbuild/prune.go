package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/repo"
)

// newPruneCmd returns `pkgbuild prune`.
func newPruneCmd() *cobra.Command {
	var (
		f      repoFlags
		fleet  fleetFlags
		keep   int
		grace  time.Duration
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "prune --repo URL --keep N",
		Short: "Keep the newest N versions per package per dist; delete unreferenced files",
		Long: `prune drops all but the newest N versions of each package from every dist
(the version before the newest, the rollback target, always stays, and with
--redis so does every version a host of the fleet records running, read from
the hosts' records and never written), then
deletes pool files no dist refers to and by-hash indexes no current Release
lists, once prune has seen them unreferenced for --grace. Files this run itself
dereferenced wait for the next run, and so do files a publish, promote or yank
referenced in the last few minutes (the retention protocol in
docs/architecture.md), so prune is safe to run at any time, beside any number
of other commands. A dist that cannot be read is skipped with a warning and
everything it may refer to is kept. This is the only command that lists the
bucket.`,
		Example: `  pkgbuild prune --repo s3://my-bucket/apt --keep 10 --dry-run
  pkgbuild prune --repo ./repo --keep 3 --grace 0
  pkgbuild prune --repo s3://my-bucket/apt --keep 5 --redis rediss://:TOKEN@redis.internal:6379`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keep < 0 {
				return fmt.Errorf("--keep %d: must be 0 (keep all) or more", keep)
			}
			if grace < 0 {
				return fmt.Errorf("--grace %s: must not be negative", grace)
			}
			r, err := f.open(cmd.Context(), !dryRun, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			opts := repo.PruneOptions{Keep: keep, Grace: grace, DryRun: dryRun}
			if keep > 0 && fleet.redisURL == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: no --redis: could not check which versions live hosts run; only --keep and the rollback target protect them")
			} else if keep > 0 {
				inUse, err := liveVersions(cmd.Context(), &fleet)
				if err != nil {
					return oneLine(fmt.Errorf("prune: %w", err))
				}
				opts.InUse = inUse
			}
			rep, err := r.Prune(cmd.Context(), opts)
			if rep != nil {
				verb := map[bool]string{true: "would remove", false: "removed"}[dryRun]
				for _, s := range rep.Removed {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, s)
				}
				verb = map[bool]string{true: "would delete", false: "deleted"}[dryRun]
				for _, s := range rep.Deleted {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, s)
				}
				for _, s := range rep.Skipped {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: skipped dist %s; kept everything it may refer to\n", s)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d dists, %d index entries, %d files %s, %d unreferenced files kept (inside the grace period, just dereferenced, or held by a change in the last few minutes)\n",
					len(rep.Dists), len(rep.Removed), len(rep.Deleted), verb, len(rep.Kept))
			}
			if err != nil {
				return oneLine(fmt.Errorf("prune: %w", err))
			}
			return nil
		},
	}
	f.register(cmd, false)
	fleet.register(cmd, false)
	f.registerValidFor(cmd)
	cmd.Flags().IntVar(&keep, "keep", 0, "versions to keep per package per dist (required; 0 keeps all)")
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "delete an unreferenced file only once prune has seen it unreferenced this long")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would go; change nothing")
	cmd.MarkFlagRequired("keep")
	return cmd
}

// liveVersions reads, read-only, the version every recorded host runs, per
// env (which is the dist the hosts install from): each app's package at
// that version must stay in the dist.
func liveVersions(ctx context.Context, fleet *fleetFlags) (map[string][]repo.Ref, error) {
	st, closeFn, err := fleet.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	envs, err := st.AppEnvs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]repo.Ref{}
	for _, ae := range envs {
		hosts, err := st.Hosts(ctx, ae.App, ae.Env)
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			if h.Version != "" {
				out[ae.Env] = append(out[ae.Env], repo.Ref{Name: ae.App, Version: h.Version})
			}
		}
	}
	return out, nil
}
