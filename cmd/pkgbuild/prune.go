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
		Long: `prune drops all but the newest N versions of each package from every dist,
then deletes pool files no dist refers to and by-hash indexes no current
Release lists, once they are older than --grace. Files this run itself
dereferenced wait for the next run. This is the only command that lists the
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
				fmt.Fprintf(cmd.OutOrStdout(), "%d dists, %d index entries, %d files %s, %d unreferenced files kept (grace period or just dereferenced)\n",
					len(rep.Dists), len(rep.Removed), len(rep.Deleted), verb, len(rep.Kept))
			}
			if err != nil {
				return oneLine(fmt.Errorf("prune: %w", err))
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().IntVar(&keep, "keep", 0, "versions to keep per package per dist (required; 0 keeps all)")
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "keep unreferenced files younger than this")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would go; change nothing")
	cmd.MarkFlagRequired("keep")
	return cmd
}
