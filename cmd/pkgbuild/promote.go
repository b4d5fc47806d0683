package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/repo"
)

// newPromoteCmd returns `pkgbuild promote`.
func newPromoteCmd() *cobra.Command {
	var (
		f        repoFlags
		ann      announceFlags
		wait     waitFlags
		ff       fleetFlags
		from, to string
	)
	cmd := &cobra.Command{
		Use:   "promote --repo URL --from DIST --to DIST NAME=VERSION...",
		Short: "Copy package versions from one dist to another (same pool files)",
		Long: `promote copies the index entries of NAME=VERSION (every architecture) from
one dist to another: the same pool file and checksums, so production runs the
bytes staging tested. Only indexes change.`,
		Example: `  pkgbuild promote --repo s3://my-bucket/apt --from staging --to production hello=1.4.0-1
  pkgbuild promote --repo s3://my-bucket/apt --from staging --to production \
      --wait-rollout --redis rediss://:TOKEN@redis.internal:6379 --announce 10.0.1.5:7946 hello=1.4.0-1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			r, err := f.open(cmd.Context(), true, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			ctx := cmd.Context()
			if err := ff.prepare(ctx); err != nil {
				return err
			}
			ff.redisURL, ff.prefix = wait.redisURL, wait.prefix
			h, err := ff.openHistory(ctx)
			if err != nil {
				return err
			}
			defer h.Close()
			if err := wait.waitRollouts(cmd.Context(), cmd.ErrOrStderr(), from, refs); err != nil {
				return oneLine(fmt.Errorf("promote: %w", err))
			}
			added, err := r.Promote(cmd.Context(), from, to, refs)
			if err != nil {
				return oneLine(fmt.Errorf("promote: %w", err))
			}
			for _, p := range added {
				fmt.Fprintf(cmd.OutOrStdout(), "promoted %s from %s to %s\n", p, from, to)
			}
			if len(added) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s already has every version given\n", to)
			}
			seen := map[string]bool{}
			for _, p := range added {
				if seen[p.Name+"="+p.Version] {
					continue
				}
				seen[p.Name+"="+p.Version] = true
				newest, err := r.Newest(ctx, to, p.Name)
				if err == nil && repo.CompareVersions(p.Version, newest) < 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s is older than %s's newest, %s: hosts stay on %s (to go back, pkgbuild rollback --dist %s %s --to %s)\n",
						p.Name, p.Version, to, newest, newest, to, p.Name, p.Version)
				}
				ev := ff.event(event.Promoted, p.Name, to, p.Version, "")
				ev.From = from
				if err := h.record(ctx, &ff, "promoted", ev); err != nil {
					return err
				}
			}
			return oneLine(ann.announce(cmd.Context(), cmd.ErrOrStderr(), to, added))
		},
	}
	f.register(cmd, true)
	f.registerValidFor(cmd)
	ann.register(cmd)
	wait.register(cmd)
	ff.registerChange(cmd)
	cmd.Flags().StringVar(&from, "from", "", "dist to copy from (required)")
	cmd.Flags().StringVar(&to, "to", "", "dist to copy to (required; created if needed)")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}
