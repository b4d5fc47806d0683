package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/pkgbuild"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/storeurl"
)

// newKeyringCmd returns `pkgbuild keyring`.
func newKeyringCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keyring",
		Short: "Package the repository's public keys",
	}
	cmd.AddCommand(newKeyringBuildCmd())
	return cmd
}

func newKeyringBuildCmd() *cobra.Command {
	var (
		f                         repoFlags
		publics                   []string
		name, version, maintainer string
		out                       string
	)
	cmd := &cobra.Command{
		Use:   "build (--repo URL | --public FILE...) --version V --maintainer M [--name NAME] [--out DIR]",
		Short: "Build a keyring package: the repository's public keys in /usr/share/keyrings/NAME.gpg",
		Long: `keyring build makes a Debian package (like debian-archive-keyring) holding the
public keys apt checks the repository with, as /usr/share/keyrings/NAME.gpg:
the repository's trusted keys (--repo: keys/trusted.gpg, which holds the old
and the new key during a rotation) or the keyrings given with --public.
Publish it like any package; hosts whose source says
signed-by=/usr/share/keyrings/NAME.gpg (pkgbuild userdata --keyring-package)
then get a new key through apt before the old one is dropped. It prints the
path of the package.`,
		Example: `  pkgbuild key rotate --repo s3://my-bucket/apt --key old.asc --new-key new.asc
  pkgbuild keyring build --repo s3://my-bucket/apt --version 2 --maintainer "Ops <ops@example.com>"
  pkgbuild publish --repo s3://my-bucket/apt --dist production --key old.asc dist/aptfleet-archive-keyring_2_all.deb`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (f.url == "") == (len(publics) == 0) {
				return errors.New("keyring build: give the keys with --repo URL or with --public FILE, not both")
			}
			if err := debian.CheckPackageName(name); err != nil {
				return fmt.Errorf("--name: %w", err)
			}
			if err := debian.CheckVersion(version); err != nil {
				return fmt.Errorf("--version: %w", err)
			}
			var keys bytes.Buffer
			if f.url != "" {
				st, err := storeurl.Open(cmd.Context(), f.url, storeurl.Options{Endpoint: f.endpoint, Region: f.region, PathStyle: f.pathStyle})
				if err != nil {
					return oneLine(err)
				}
				k, etag, err := (&repo.Repo{Store: st}).TrustedKeys(cmd.Context())
				if err != nil {
					return oneLine(err)
				}
				if etag == "" {
					return fmt.Errorf("keyring build: %s records no trusted keys (%s); publish to it first, or give --public", f.url, repo.TrustedKeysKey)
				}
				if err := k.Write(&keys); err != nil {
					return err
				}
			}
			for _, p := range publics {
				k, err := repo.LoadKeyring(p)
				if err != nil {
					return oneLine(err)
				}
				if err := k.Write(&keys); err != nil {
					return err
				}
			}
			path, err := buildKeyring(name, version, maintainer, keys.Bytes(), out)
			if err != nil {
				return oneLine(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "repo", "", "repository whose trusted keys to package: s3://BUCKET/PREFIX, file:///PATH or a directory")
	fl.StringVar(&f.endpoint, "endpoint", "", "S3-compatible server base URL (default: AWS_ENDPOINT_URL_S3, else AWS)")
	fl.StringVar(&f.region, "region", "", "S3 region (default: the AWS SDK's, else us-east-1)")
	fl.BoolVar(&f.pathStyle, "path-style", false, "address the bucket path-style (implied for IP and localhost endpoints)")
	fl.StringArrayVar(&publics, "public", nil, "public keyring `FILE` to include (.asc or .gpg); repeatable")
	fl.StringVar(&name, "name", "aptfleet-archive-keyring", "package name; the keyring is /usr/share/keyrings/NAME.gpg")
	fl.StringVar(&version, "version", "", "package version, e.g. 2 or 2026.12.1 (required; raise it at each rotation)")
	fl.StringVar(&maintainer, "maintainer", "", "Maintainer field, \"Name <email>\" (required)")
	fl.StringVar(&out, "out", "dist", "output `DIR`")
	cmd.MarkFlagRequired("version")
	cmd.MarkFlagRequired("maintainer")
	return cmd
}

// buildKeyring writes the keyring package into out and returns its path.
func buildKeyring(name, version, maintainer string, keys []byte, out string) (string, error) {
	dir, err := os.MkdirTemp("", "keyring-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, name+".gpg"), keys, 0o644); err != nil {
		return "", err
	}
	spec := fmt.Sprintf(`name: %s
version: %q
arch: all
maintainer: %q
description: |
  OpenPGP keys of an aptfleet apt repository
  The public keys apt checks the repository's signatures with,
  in /usr/share/keyrings/%s.gpg.
  A key rotation ships the new key in a new version of this
  package before the old key is dropped.
section: misc
license: public-domain
files:
  - {src: %s.gpg, dst: /usr/share/keyrings/%s.gpg, mode: "0644"}
`, name, version, maintainer, name, name, name)
	specPath := filepath.Join(dir, "package.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		return "", err
	}
	s, err := pkgbuild.Parse(strings.NewReader(spec), specPath)
	if err != nil {
		return "", err
	}
	if s.ModTime, err = sourceDateEpoch(); err != nil {
		return "", err
	}
	return writeAtomic(out, s.FileName(), func(w io.Writer) error { return pkgbuild.Build(s, w) })
}
