package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/pkgbuild"
	"github.com/aptfleet/aptfleet/repo"
)

// newBuildCmd returns `pkgbuild build`.
func newBuildCmd() *cobra.Command {
	var specPath, nfpmPath, version, out string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build a Debian package from package.yaml (or an nfpm.yaml)",
		Long: `build turns an application tree and its package.yaml into a .deb and prints
the path of the package on stdout.

Each Procfile process becomes <name>-<process>.service under <name>.target,
running as the package's system user with /etc/default/<name> as its
environment. The version is --version, else the spec's version, else derived
from ` + "`git describe`" + ` (tag v1.4.0 -> 1.4.0-1; BUILD_NUMBER becomes the Debian
revision). With SOURCE_DATE_EPOCH set the build is byte-for-byte reproducible.

--nfpm passes an existing nfpm.yaml to nfpm unchanged instead.`,
		Example: `  pkgbuild build --spec examples/hello/package.yaml --out dist
  BUILD_NUMBER=42 pkgbuild build --spec package.yaml
  pkgbuild build --nfpm nfpm.yaml --out dist`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				name string
				err  error
			)
			if cmd.Flags().Changed("nfpm") {
				if cmd.Flags().Changed("spec") || version != "" {
					return errors.New("build: --nfpm takes the package as it is; drop --spec and --version")
				}
				name, err = buildNFPM(nfpmPath, out)
			} else {
				name, err = buildSpec(cmd.Context(), specPath, version, out)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), name)
			return nil
		},
	}
	cmd.Flags().StringVar(&specPath, "spec", "package.yaml", "package spec `FILE`")
	cmd.Flags().StringVar(&nfpmPath, "nfpm", "", "build from this nfpm.yaml `FILE` instead of a spec")
	cmd.Flags().StringVar(&version, "version", "", "package version `V` (default: the spec's, else from git describe)")
	cmd.Flags().StringVar(&out, "out", "dist", "output `DIR`")
	return cmd
}

// buildSpec builds from a package.yaml and returns the .deb's path.
func buildSpec(ctx context.Context, specPath, version, out string) (string, error) {
	f, err := os.Open(specPath)
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	spec, err := pkgbuild.Parse(f, specPath)
	f.Close()
	if err != nil {
		return "", err
	}
	switch {
	case version != "":
		if err := pkgbuild.CheckVersion(version); err != nil {
			return "", fmt.Errorf("--version: %w", err)
		}
		if err := spec.SetVersion(version); err != nil {
			return "", err
		}
	case spec.Version == "":
		v, err := gitVersion(ctx, filepath.Dir(specPath), os.Getenv("BUILD_NUMBER"))
		if err != nil {
			return "", fmt.Errorf("%s: version: not set, and %w (pass --version)", specPath, err)
		}
		if err := spec.SetVersion(v); err != nil {
			return "", err
		}
	}
	if spec.ModTime, err = sourceDateEpoch(); err != nil {
		return "", err
	}
	return writeAtomic(out, spec.FileName(), func(w io.Writer) error { return pkgbuild.Build(spec, w) })
}

// buildNFPM builds the deb an nfpm.yaml describes, as nfpm would.
func buildNFPM(path, out string) (string, error) {
	cfg, err := nfpm.ParseFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return writeAtomic(out, deb.Default.ConventionalFileName(info), func(w io.Writer) error {
		if err := deb.Default.Package(info, w); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
}

// writeAtomic builds into a temporary file in dir and renames it to name on
// success, so a failed build leaves no partial package.
func writeAtomic(dir, name string, build func(io.Writer) error) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("--out: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("--out: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := build(tmp); err != nil {
		return "", err
	}
	// Read the package back as publish will: a control file the
	// repository would refuse fails the build, not the publish.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := repo.ReadDeb(tmp); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("write %s: %w", final, err)
	}
	ok = true
	return final, nil
}

// gitVersion derives a Debian version from `git describe` in dir.
func gitVersion(ctx context.Context, dir, build string) (string, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(b)), nil
	}
	describe, err := git("describe", "--tags", "--long", "--always", "--dirty", "--match", "v[0-9]*", "--match", "[0-9]*")
	if err != nil {
		return "", err
	}
	count, err := git("rev-list", "--count", "HEAD")
	if err != nil {
		return "", err
	}
	n, _ := strconv.Atoi(count)
	return pkgbuild.VersionFromDescribe(describe, n, build)
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH; zero when unset.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: not a number of seconds since 1970", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}
