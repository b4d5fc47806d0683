package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/repo"
)

// newListCmd returns `pkgbuild list`.
func newListCmd() *cobra.Command {
	var (
		f            repoFlags
		dist         string
		long, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --repo URL --dist DIST",
		Short: "List a dist's packages, newest version first",
		Long: `list prints one line per package version in the dist: name, version,
architecture, sorted by name and newest version first; --long adds the
component, size, SHA256 and pool file, --json prints the same as a JSON array.
The InRelease signature and the index checksums are checked first.`,
		Example: `  pkgbuild list --repo s3://my-bucket/apt --dist production --keyring repo.gpg
  pkgbuild list --repo s3://my-bucket/apt --dist production --keyring repo.gpg --json | jq -r '.[0].version'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.open(cmd.Context(), false, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			pkgs, err := r.List(cmd.Context(), dist)
			if err != nil {
				return oneLine(fmt.Errorf("list: %w", err))
			}
			if asJSON {
				out := make([]packageJSON, 0, len(pkgs))
				for _, p := range pkgs {
					out = append(out, toJSON(p))
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			for _, p := range pkgs {
				if long {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s %s %d %s %s\n", p.Name, p.Version, p.Architecture, p.Component, p.Size, p.SHA256, p.Filename)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", p.Name, p.Version, p.Architecture)
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&dist, "dist", "", "dist to list (required)")
	cmd.Flags().BoolVar(&long, "long", false, "also print component, size, SHA256 and pool file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.MarkFlagRequired("dist")
	return cmd
}

// packageJSON is one index entry in --json output.
type packageJSON struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Architecture string            `json:"architecture"`
	Component    string            `json:"component"`
	Filename     string            `json:"filename"`
	Size         int64             `json:"size"`
	SHA256       string            `json:"sha256"`
	Fields       map[string]string `json:"fields,omitempty"`
}

func toJSON(p repo.Package) packageJSON {
	return packageJSON{Name: p.Name, Version: p.Version, Architecture: p.Architecture, Component: p.Component,
		Filename: p.Filename, Size: p.Size, SHA256: p.SHA256}
}

// newShowCmd returns `pkgbuild show`.
func newShowCmd() *cobra.Command {
	var (
		f      repoFlags
		dist   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show --repo URL --dist DIST NAME=VERSION",
		Short: "Print a package version's index entry (every architecture)",
		Long: `show prints the index entry of NAME=VERSION in the dist as apt reads it
(every field, one paragraph per architecture), after checking the InRelease
signature and the index checksums. --json prints the entries as a JSON array
with every field. A version not in the dist exits 1.`,
		Example: `  pkgbuild show --repo s3://my-bucket/apt --dist production --keyring repo.gpg hello=1.4.0-1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			r, err := f.open(cmd.Context(), false, cmd.ErrOrStderr())
			if err != nil {
				return oneLine(err)
			}
			pkgs, err := r.List(cmd.Context(), dist)
			if err != nil {
				return oneLine(fmt.Errorf("show: %w", err))
			}
			var out []packageJSON
			w := cmd.OutOrStdout()
			for _, p := range pkgs {
				if p.Name != refs[0].Name || repo.CompareVersions(p.Version, refs[0].Version) != 0 {
					continue
				}
				if !asJSON {
					if len(out) > 0 {
						io.WriteString(w, "\n")
					}
					w.Write(p.Raw)
				}
				j := toJSON(p)
				ctl, err := p.Control()
				if err != nil {
					return oneLine(fmt.Errorf("show: %s: %w", p, err))
				}
				j.Fields = map[string]string{}
				for _, fl := range ctl {
					j.Fields[fl.Name] = fl.Value
				}
				out = append(out, j)
			}
			if len(out) == 0 {
				return fmt.Errorf("show: %s is not in %s", refs[0], dist)
			}
			if asJSON {
				return writeJSON(w, out)
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&dist, "dist", "", "dist to read (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.MarkFlagRequired("dist")
	return cmd
}
