package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newBuildCmd returns `pkgbuild build`.
func newBuildCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build a Debian package from package.yaml (or an nfpm.yaml)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("build: not available yet")
		},
	}
	return cmd
}
