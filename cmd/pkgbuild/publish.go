package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newPublishCmd returns `pkgbuild publish`.
func newPublishCmd() *cobra.Command {
	var (
		f              repoFlags
		ann            announceFlags
		dist, comp     string
		xz, withSHA512 bool
		newKey         bool
	)
	cmd := &cobra.Command{
		Use:   "publish --repo URL --dist DIST DEB...",
		Short: "Add .deb files to a dist of the signed apt repository",
		Long: `publish uploads .deb files to the repository's pool (create-only: the same
file again is a no-op, other bytes under the same name are refused) and adds
them to the dist's index, creating the dist if needed. Concurrent publishers
are safe: the commit is a conditional write of InRelease and the loser
retries. Every file is checked before anything is written.

The repository trusts the key its first publish signed with (recorded in
keys/trusted.gpg): a publish with another key is refused before any upload.
--new-key lets another key sign a new dist, and trusts it from then on.`,
		Example: `  pkgbuild publish --repo s3://my-bucket/apt --dist staging --key signing.asc dist/hello_1.4.0-1_amd64.deb
  pkgbuild publish --repo ./repo --dist staging dist/*.deb   # key from APTFLEET_SIGNING_KEY_FILE`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.open(cmd.Context(), true, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			r.Config.XZ, r.Config.SHA512 = xz, withSHA512
			r.NewKey = newKey
			added, err := r.Publish(cmd.Context(), dist, comp, args)
			if err != nil {
				return oneLine(fmt.Errorf("publish: %w", err))
			}
			for _, p := range added {
				fmt.Fprintf(cmd.OutOrStdout(), "published %s to %s\n", p, dist)
			}
			if len(added) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s already has every package given\n", dist)
			}
			return oneLine(ann.announce(cmd.Context(), cmd.ErrOrStderr(), dist, added))
		},
	}
	f.register(cmd, true)
	f.registerValidFor(cmd)
	ann.register(cmd)
	cmd.Flags().StringVar(&dist, "dist", "", "distribution to publish to: staging, production... (required)")
	cmd.Flags().StringVar(&comp, "component", "main", "component")
	cmd.Flags().BoolVar(&xz, "xz", false, "also write Packages.xz (slow for large indexes)")
	cmd.Flags().BoolVar(&withSHA512, "sha512", false, "also list SHA512 checksums in Release (stores each index under both by-hash names)")
	cmd.Flags().BoolVar(&newKey, "new-key", false, "sign a new dist with a key the repository does not trust yet, and trust it from then on")
	cmd.MarkFlagRequired("dist")
	return cmd
}
