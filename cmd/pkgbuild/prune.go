package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/repo"
)

// newPruneCmd returns `pkgbuild prune`.
func newPruneCmd() *cobra.Command {
	var (
		f      repoFlags
		keep   int
		grace  time.Duration
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "prune --repo URL --keep N",
		Short: "Keep the newest N versions per package per dist; delete unreferenced files",
		Long: `prune drops all but the newest N versions of each package from every dist
(the version before the newest, the rollback target, always stays), then
deletes pool files no dist refers to and by-hash indexes no current Release
lists, once prune has seen them unreferenced for --grace. Files this run itself
dereferenced wait for the next run, and so do files a publish, promote or yank
referenced in the last few minutes (the retention protocol in
docs/architecture.md), so prune is safe to run at any time, beside any number
of other commands. A dist that cannot be read is skipped with a warning and
everything it may refer to is kept. This is the only command that lists the
bucket.`,
		Example: `  pkgbuild prune --repo s3://my-bucket/apt --keep 10 --dry-run
  pkgbuild prune --repo ./repo --keep 3 --grace 0`,
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
			rep, err := r.Prune(cmd.Context(), repo.PruneOptions{Keep: keep, Grace: grace, DryRun: dryRun})
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
	f.registerValidFor(cmd)
	cmd.Flags().IntVar(&keep, "keep", 0, "versions to keep per package per dist (required; 0 keeps all)")
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "keep unreferenced files younger than this")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would go; change nothing")
	cmd.MarkFlagRequired("keep")
	return cmd
}
