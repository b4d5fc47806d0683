package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newYankCmd returns `pkgbuild yank`.
func newYankCmd() *cobra.Command {
	var (
		f    repoFlags
		dist string
	)
	cmd := &cobra.Command{
		Use:   "yank --repo URL --dist DIST NAME=VERSION...",
		Short: "Remove package versions from a dist's index",
		Long: `yank removes NAME=VERSION (every architecture) from the dist's index. The
pool file stays until prune finds that no dist refers to it.`,
		Example: `  pkgbuild yank --repo s3://my-bucket/apt --dist production hello=1.4.0-1`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			r, err := f.open(cmd.Context(), true, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			removed, err := r.Yank(cmd.Context(), dist, refs)
			if err != nil {
				return oneLine(fmt.Errorf("yank: %w", err))
			}
			for _, p := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "yanked %s from %s\n", p, dist)
			}
			return nil
		},
	}
	f.register(cmd, true)
	f.registerValidFor(cmd)
	cmd.Flags().StringVar(&dist, "dist", "", "dist to remove from (required)")
	cmd.MarkFlagRequired("dist")
	return cmd
}
