package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
)

// aptly drives Debian's aptly 1.5 publishing a local repo to the benchmark
// server through an S3PublishEndpoint (path-style, like aptfleet's).
type aptly struct {
	dir      string // rootDir and config
	conf     string
	endpoint string // S3PublishEndpoints name
	keys     *keys
	flags    []string // extra publish update flags
}

func newAptly(work, serverURL, bucket, prefix string, k *keys) (*aptly, error) {
	a := &aptly{dir: filepath.Join(work, "aptly-"+prefix), endpoint: "bench", keys: k}
	if err := os.RemoveAll(a.dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return nil, err
	}
	conf := map[string]any{
		"rootDir":             filepath.Join(a.dir, "root"),
		"architectures":       []string{"amd64"},
		"gpgProvider":         "internal",
		"downloadConcurrency": 2,
		"S3PublishEndpoints": map[string]any{
			a.endpoint: map[string]any{
				"region":             "us-east-1",
				"bucket":             bucket,
				"prefix":             prefix,
				"endpoint":           serverURL,
				"awsAccessKeyID":     "bench",
				"awsSecretAccessKey": "bench-secret",
				"acl":                "private",
			},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	a.conf = filepath.Join(a.dir, "aptly.conf")
	return a, os.WriteFile(a.conf, b, 0o644)
}

func (a *aptly) cmd(args ...string) []string {
	return append([]string{"aptly", "-config=" + a.conf}, args...)
}

func (a *aptly) signFlags() []string {
	return []string{"-batch", "-gpg-key=" + a.keys.aptlyKeyID, "-keyring=" + a.keys.aptlyPublic, "-secret-keyring=" + a.keys.aptlySecret}
}

// seed creates the local repo with debs and publishes it.
func (a *aptly) seed(ctx context.Context, debs []pkg) error {
	if _, err := run(ctx, a.dir, nil, a.cmd("repo", "create", "-distribution=bench", "-component=main", "bench")...); err != nil {
		return err
	}
	for i := 0; i < len(debs); i += 1000 {
		args := a.cmd("repo", "add", "bench")
		for _, p := range debs[i:min(i+1000, len(debs))] {
			args = append(args, p.Path)
		}
		if _, err := run(ctx, a.dir, nil, args...); err != nil {
			return err
		}
	}
	args := a.cmd("publish", "repo")
	args = append(args, a.signFlags()...)
	args = append(args, a.flags...)
	args = append(args, "-architectures=amd64", "bench", "s3:"+a.endpoint+":")
	_, err := run(ctx, a.dir, nil, args...)
	return err
}

// publish adds one package and updates the published dist: the two commands
// an aptly user runs to publish a new build.
func (a *aptly) publish(ctx context.Context, p pkg) (result, error) {
	add, err := run(ctx, a.dir, nil, a.cmd("repo", "add", "bench", p.Path)...)
	if err != nil {
		return result{}, err
	}
	args := a.cmd("publish", "update")
	args = append(args, a.signFlags()...)
	args = append(args, a.flags...)
	args = append(args, "bench", "s3:"+a.endpoint+":")
	upd, err := run(ctx, a.dir, nil, args...)
	if err != nil {
		return result{}, err
	}
	return result{Wall: add.Wall + upd.Wall, CPU: add.CPU + upd.CPU, MaxRSS: max(add.MaxRSS, upd.MaxRSS)}, nil
}
