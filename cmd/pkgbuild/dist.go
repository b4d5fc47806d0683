package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// newDistCmd returns `pkgbuild dist list|delete`.
func newDistCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dist",
		Short: "List or delete the repository's dists",
	}
	cmd.AddCommand(newDistListCmd(), newDistDeleteCmd())
	return cmd
}

func newDistListCmd() *cobra.Command {
	var (
		f      repoFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --repo URL",
		Short: "List the dists: name, date, entries, origin and label",
		Long: `dist list prints one line per dist (one with a dists/<dist>/InRelease): its
name, Release date, number of index entries, Origin and Label, after checking
its signature and index checksums. A dist that cannot be read is listed with
its problem and makes the command exit 1.`,
		Example: `  pkgbuild dist list --repo s3://my-bucket/apt --keyring repo.gpg --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.open(cmd.Context(), false, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			infos, err := r.DistInfos(cmd.Context())
			if err != nil {
				return oneLine(fmt.Errorf("dist list: %w", err))
			}
			bad := 0
			for _, d := range infos {
				if d.Problem != "" {
					bad++
				}
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), infos); err != nil {
					return err
				}
			} else {
				for _, d := range infos {
					if d.Problem != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "%s problem: %s\n", d.Name, oneLine(fmt.Errorf("%s", d.Problem)))
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s %d entries origin=%q label=%q\n", d.Name, d.Date.UTC().Format(time.RFC3339), d.Packages, d.Origin, d.Label)
				}
			}
			if bad > 0 {
				return fmt.Errorf("dist list: %d of %d dists cannot be read", bad, len(infos))
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newDistDeleteCmd() *cobra.Command {
	var (
		f     repoFlags
		force bool
	)
	cmd := &cobra.Command{
		Use:   "delete --repo URL DIST",
		Short: "Delete a dist's indexes (its pool files go at the next prune)",
		Long: `dist delete removes a dist: its InRelease first (the dist is gone for apt and
the agent from then on), then Release, Release.gpg and its indexes. Pool files
no other dist references are deleted by the next prune. A dist that still has
packages (hosts may be reading it) is refused unless --force. The signing key
must be the one the dist is signed with.`,
		Example: `  pkgbuild dist delete --repo s3://my-bucket/apt --key signing.asc rogue`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.open(cmd.Context(), true, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			keys, err := r.DeleteDist(cmd.Context(), args[0], force)
			if err != nil {
				return oneLine(fmt.Errorf("dist delete: %w", err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s (%d objects); run prune to delete the pool files only it referenced\n", args[0], len(keys))
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&force, "force", false, "delete a dist that still has packages")
	return cmd
}
