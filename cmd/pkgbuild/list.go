package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newListCmd returns `pkgbuild list`.
func newListCmd() *cobra.Command {
	var (
		f    repoFlags
		dist string
	)
	cmd := &cobra.Command{
		Use:     "list --repo URL --dist DIST",
		Short:   "List a dist's packages, newest version first",
		Long:    `list prints one line per package version in the dist: name, version, architecture, sorted by name and newest version first. The InRelease signature and the index checksums are checked first.`,
		Example: `  pkgbuild list --repo s3://my-bucket/apt --dist production --keyring repo.gpg`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.open(cmd.Context(), false, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			pkgs, err := r.List(cmd.Context(), dist)
			if err != nil {
				return oneLine(fmt.Errorf("list: %w", err))
			}
			for _, p := range pkgs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", p.Name, p.Version, p.Architecture)
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&dist, "dist", "", "dist to list (required)")
	cmd.MarkFlagRequired("dist")
	return cmd
}
