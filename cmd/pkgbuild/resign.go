package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// newResignCmd returns `pkgbuild resign`.
func newResignCmd() *cobra.Command {
	var (
		f    repoFlags
		dist string
	)
	cmd := &cobra.Command{
		Use:   "resign --repo URL --dist DIST [--valid-for DURATION]",
		Short: "Sign a dist's current state again with a new Date and Valid-Until",
		Long: `resign signs the dist's current index again with a new Date and, when the dist
has a validity period (or --valid-for gives one), a new Valid-Until = Date +
period. Nothing else changes: the same packages, indexes, components,
architectures, origin and label. Run it on a schedule (well inside the period,
e.g. daily for --valid-for 168h) so a dist that does not change never expires,
while an old copy of its signed files replayed later does.`,
		Example: `  pkgbuild resign --repo s3://my-bucket/apt --dist production
  pkgbuild resign --repo s3://my-bucket/apt --dist production --valid-for 168h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.open(cmd.Context(), true, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			rel, err := r.Resign(cmd.Context(), dist)
			if err != nil {
				return oneLine(fmt.Errorf("resign: %w", err))
			}
			until := "no Valid-Until"
			if !rel.ValidUntil.IsZero() {
				until = "valid until " + rel.ValidUntil.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "resigned %s: Date %s, %s\n", dist, rel.Date.UTC().Format(time.RFC3339), until)
			return nil
		},
	}
	f.register(cmd, true)
	f.registerValidFor(cmd)
	cmd.Flags().StringVar(&dist, "dist", "", "dist to sign again (required)")
	cmd.MarkFlagRequired("dist")
	return cmd
}
