package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newRepairCmd returns `pkgbuild repair`.
func newRepairCmd() *cobra.Command {
	var (
		f    repoFlags
		dist string
	)
	cmd := &cobra.Command{
		Use:   "repair --repo URL [--dist DIST]",
		Short: "Restore what can be restored: by-hash indexes, InRelease, the derived files",
		Long: `repair restores, in one dist or every dist: a missing or damaged by-hash index
from its plain-path copy when that matches the checksum InRelease lists; an
InRelease that is missing or whose signature does not check, by re-signing a
Release whose detached signature checks; and the derived Release, Release.gpg
and plain-path indexes. It then lists exactly what it could not restore (an
index with no good copy, a missing pool file) with what would fix it, and exits
1 if anything is left.`,
		Example: `  pkgbuild repair --repo s3://my-bucket/apt --dist production`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.open(cmd.Context(), true, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			var dists []string
			if dist != "" {
				dists = []string{dist}
			}
			rep, err := r.Repair(cmd.Context(), dists...)
			if rep != nil {
				for _, s := range rep.Restored {
					fmt.Fprintf(cmd.OutOrStdout(), "restored %s\n", s)
				}
				for _, s := range rep.Unrestorable {
					fmt.Fprintf(cmd.ErrOrStderr(), "not restored: %s\n", s)
				}
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%d dists checked, %d objects restored, nothing left broken\n", len(rep.Dists), len(rep.Restored))
				}
			}
			if err != nil {
				return oneLine(fmt.Errorf("repair: %w", err))
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&dist, "dist", "", "the dist to repair (default: every dist)")
	return cmd
}
