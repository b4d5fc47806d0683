package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newPromoteCmd returns `pkgbuild promote`.
func newPromoteCmd() *cobra.Command {
	var (
		f        repoFlags
		ann      announceFlags
		wait     waitFlags
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
			return oneLine(ann.announce(cmd.Context(), cmd.ErrOrStderr(), to, added))
		},
	}
	f.register(cmd, true)
	f.registerValidFor(cmd)
	ann.register(cmd)
	wait.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "dist to copy from (required)")
	cmd.Flags().StringVar(&to, "to", "", "dist to copy to (required; created if needed)")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}
