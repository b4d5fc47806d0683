package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// newVerifyCmd returns `pkgbuild verify`.
func newVerifyCmd() *cobra.Command {
	var (
		f      repoFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "verify --repo URL",
		Short: "Check signatures, index hashes and every pool file",
		Long: `verify checks every dist of the repository as apt would read it: the
InRelease signature, every index against the checksums InRelease lists (by
hash), and that every package's pool file exists with the size and SHA256 its
index gives. Stale derived files (Release, Release.gpg, plain-path indexes,
which the next change rewrites) are reported as warnings. A repository with no
dist (a mistyped --repo) and a Release.gpg that does not verify beside a current
Release are problems. Problems exit 1. It prints each dist's signers (every
signature of its InRelease) and warns when a signing key expires within 30 days.`,
		Example: `  pkgbuild verify --repo s3://my-bucket/apt --keyring repo.gpg`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.open(cmd.Context(), false, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			rep, err := r.Verify(cmd.Context())
			if rep != nil && asJSON {
				if jerr := writeJSON(cmd.OutOrStdout(), rep); jerr != nil {
					return jerr
				}
			} else if rep != nil {
				for _, w := range rep.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
				}
				for _, p := range rep.Problems {
					fmt.Fprintf(cmd.ErrOrStderr(), "problem: %s\n", p)
				}
				if rep.Repairable {
					fmt.Fprintf(cmd.ErrOrStderr(), "run pkgbuild repair --repo %s to restore what can be restored\n", f.url)
				}
				for _, d := range rep.Dists {
					sigs := rep.Signers[d]
					if len(sigs) == 0 {
						continue
					}
					var by []string
					for _, s := range sigs {
						switch {
						case !s.Good && s.KeyID != "":
							by = append(by, "key ID "+s.KeyID+" (not in the keyring)")
						case !s.Good:
							by = append(by, "an unreadable signature")
						case s.KeyExpires.IsZero():
							by = append(by, s.Fingerprint)
						default:
							by = append(by, s.Fingerprint+" (expires "+s.KeyExpires.UTC().Format("2006-01-02")+")")
						}
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s: signed by %s\n", d, strings.Join(by, ", "))
				}
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "ok: %d dists, %d index entries, %d pool files verified\n", len(rep.Dists), rep.Packages, rep.Files)
				}
			}
			if err != nil {
				return oneLine(fmt.Errorf("verify: %w", err))
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (dists, counts, problems, warnings); the exit status is the same")
	return cmd
}
