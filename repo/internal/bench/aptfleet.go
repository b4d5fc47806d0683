package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/aptfleet/aptfleet/internal/tail"
)

// aptfleet drives `pkgbuild publish` against the benchmark server, with the
// endpoint and credentials in the environment the way CI passes them.
type aptfleet struct {
	bin, dir, repoURL, key string
	env                    []string
}

// buildPkgbuild compiles cmd/pkgbuild into dir.
func buildPkgbuild(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "pkgbuild")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "github.com/aptfleet/aptfleet/cmd/pkgbuild")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

func newAptfleet(bin, work, serverURL, bucket, prefix string, k *keys) (*aptfleet, error) {
	a := &aptfleet{
		bin:     bin,
		dir:     filepath.Join(work, "aptfleet-"+prefix),
		repoURL: "s3://" + bucket + "/" + prefix,
		key:     k.aptfleet,
		env: []string{
			"AWS_ENDPOINT_URL_S3=" + serverURL,
			"AWS_ACCESS_KEY_ID=bench",
			"AWS_SECRET_ACCESS_KEY=bench-secret",
			"AWS_REGION=us-east-1",
			"AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE=/dev/null",
			"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		},
	}
	if err := os.RemoveAll(a.dir); err != nil {
		return nil, err
	}
	return a, os.MkdirAll(a.dir, 0o755)
}

func (a *aptfleet) publishArgs(debs ...pkg) []string {
	args := []string{a.bin, "publish", "--repo", a.repoURL, "--dist", "bench", "--key", a.key}
	for _, p := range debs {
		args = append(args, p.Path)
	}
	return args
}

// seed publishes debs, 5,000 to a command (a longer command line would
// pass the kernel's limit on arguments).
func (a *aptfleet) seed(ctx context.Context, debs []pkg) error {
	for i := 0; i < len(debs); i += 5000 {
		if _, err := run(ctx, a.dir, a.env, a.publishArgs(debs[i:min(i+5000, len(debs))]...)...); err != nil {
			return err
		}
	}
	return nil
}

// publish publishes one package.
func (a *aptfleet) publish(ctx context.Context, p pkg) (result, error) {
	return run(ctx, a.dir, a.env, a.publishArgs(p)...)
}

// check runs `pkgbuild verify` on the repository and checks with `pkgbuild
// list` that the dist lists want versions (not timed).
func (a *aptfleet) check(ctx context.Context, want int, published []pkg) error {
	if _, err := run(ctx, a.dir, a.env, a.bin, "verify", "--repo", a.repoURL, "--key", a.key); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, a.bin, "list", "--repo", a.repoURL, "--dist", "bench", "--key", a.key)
	cmd.Env = append(cmd.Environ(), a.env...)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("pkgbuild list: %w", err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		listed[line] = true
	}
	if len(listed) != want {
		return fmt.Errorf("pkgbuild list shows %d versions, want %d", len(listed), want)
	}
	for _, p := range published {
		if !listed[p.Name+" "+p.Version+" amd64"] {
			return fmt.Errorf("published %s %s is not listed: %q", p.Name, p.Version, tail.Lines(out, 3))
		}
	}
	return nil
}
