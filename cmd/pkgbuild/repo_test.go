package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

// testDeb builds a minimal .deb with nfpm into dir.
func testDeb(t *testing.T, dir, name, version string) string {
	t.Helper()
	info := nfpm.WithDefaults(&nfpm.Info{Name: name, Arch: "amd64", Version: version, VersionSchema: "none",
		Maintainer: "tests <tests@aptfleet.invalid>", Description: "test", MTime: time.Unix(1700000000, 0)})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := deb.Default.Package(info, &b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("%s_%s_amd64.deb", name, version))
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCLI runs the command line and returns stdout and the error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), err
}

// snapshot hashes every file under root, to show a failed command changed
// nothing.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, ".aptfleet.") {
			return nil
		}
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %x\n", p, sha256.Sum256(data))
		return nil
	})
	return b.String()
}

func TestRepositoryCommands(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	key, pub := filepath.Join(dir, "signing.asc"), filepath.Join(dir, "repo.gpg")
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", "")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "s3cret")
	if _, err := runCLI(t, "key", "generate", "--out", key, "--public", pub); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "key", "generate", "--out", key); err == nil {
		t.Errorf("key generate overwrote an existing key")
	}
	v1, v2 := testDeb(t, dir, "hello", "1.0-1"), testDeb(t, dir, "hello", "1.1-1")
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"publish", "--repo", repoDir, "--dist", "staging", "--key", key, v1, v2}, "published hello 1.0-1 amd64 to staging\npublished hello 1.1-1 amd64 to staging\n"},
		{[]string{"promote", "--repo", "file://" + repoDir, "--from", "staging", "--to", "production", "--key", key, "hello=1.0-1"}, "promoted hello 1.0-1 amd64 from staging to production\n"},
		{[]string{"list", "--repo", repoDir, "--dist", "staging", "--keyring", pub}, "hello 1.1-1 amd64\nhello 1.0-1 amd64\n"},
		{[]string{"list", "--repo", repoDir, "--dist", "production", "--key", key}, "hello 1.0-1 amd64\n"},
		{[]string{"yank", "--repo", repoDir, "--dist", "staging", "--key", key, "hello=1.1-1"}, "yanked hello 1.1-1 amd64 from staging\n"},
		{[]string{"verify", "--repo", repoDir, "--keyring", pub}, "ok: 2 dists, 2 index entries, 1 pool files verified\n"},
		// The yank just held nothing new, but the publish of 1.1-1 held its
		// pool file minutes ago: it stays until the hold has run out.
		{[]string{"prune", "--repo", repoDir, "--keep", "1", "--grace", "0", "--key", key}, "2 dists, 0 index entries, 0 files deleted, 2 unreferenced files kept"},
	}
	for _, s := range steps {
		out, err := runCLI(t, s.args...)
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(s.args, " "), err)
		}
		if !strings.HasPrefix(out, s.want) && !strings.Contains(out, s.want) {
			t.Errorf("%s:\n got %q\nwant %q", s.args[0], out, s.want)
		}
	}

	// Bad input: a one-line error naming the input, and the repository unchanged.
	notDeb := filepath.Join(dir, "notes.deb")
	os.WriteFile(notDeb, []byte("just text\n"), 0o644)
	full, _ := os.ReadFile(testDeb(t, dir, "hello", "2.0-1"))
	corrupt := filepath.Join(dir, "corrupt.deb")
	os.WriteFile(corrupt, full[:len(full)/3], 0o644)
	v3 := testDeb(t, dir, "hello", "3.0-1")
	otherKey := filepath.Join(dir, "other.asc")
	if _, err := runCLI(t, "key", "generate", "--out", otherKey); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	bad := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"not a deb", nil, []string{"publish", "--repo", repoDir, "--dist", "staging", "--key", key, v3, notDeb}, notDeb + ": repo: not a valid .deb: not an ar archive"},
		{"corrupt deb", nil, []string{"publish", "--repo", repoDir, "--dist", "staging", "--key", key, corrupt}, corrupt + ": repo: not a valid .deb"},
		{"missing key file", nil, []string{"publish", "--repo", repoDir, "--dist", "staging", "--key", filepath.Join(dir, "nokey.asc"), v3}, "nokey.asc: no such file"},
		{"no key", nil, []string{"publish", "--repo", repoDir, "--dist", "staging", v3}, "no signing key"},
		{"wrong passphrase", map[string]string{"APTFLEET_SIGNING_KEY_PASSPHRASE": "wrong"}, []string{"publish", "--repo", repoDir, "--dist", "staging", "--key", key, v3}, "signing key " + key + ": repo: wrong passphrase"},
		{"no passphrase", map[string]string{"APTFLEET_SIGNING_KEY_PASSPHRASE": ""}, []string{"publish", "--repo", repoDir, "--dist", "staging", "--key", key, v3}, "no passphrase was given"},
		{"public key as signing key", nil, []string{"publish", "--repo", repoDir, "--dist", "staging", "--key", pub, v3}, "no private key"},
		{"unknown dist in promote", nil, []string{"promote", "--repo", repoDir, "--from", "qa", "--to", "production", "--key", key, "hello=1.0-1"}, "no such dist: qa"},
		{"unknown version in promote", nil, []string{"promote", "--repo", repoDir, "--from", "staging", "--to", "production", "--key", key, "hello=9.9-1"}, "hello=9.9-1 is not in staging"},
		{"bad ref", nil, []string{"yank", "--repo", repoDir, "--dist", "staging", "--key", key, "hello"}, `"hello": want NAME=VERSION`},
		{"bad dist name", nil, []string{"publish", "--repo", repoDir, "--dist", "../x", "--key", key, v3}, `invalid name "../x"`},
		{"another key", nil, []string{"publish", "--repo", repoDir, "--dist", "staging", "--key", otherKey, v3}, "publish: repo: signing key not trusted by this repository: dists/staging/InRelease is not signed by key"},
		{"another key, new dist", nil, []string{"publish", "--repo", repoDir, "--dist", "rogue", "--key", otherKey, v3}, "is not among the repository's trusted keys"},
		{"another key, yank", nil, []string{"yank", "--repo", repoDir, "--dist", "staging", "--key", otherKey, "hello=1.0-1"}, "signing key not trusted"},
		{"another key, prune", nil, []string{"prune", "--repo", repoDir, "--keep", "1", "--key", otherKey}, "signing key not trusted"},
		{"wrong keyring", nil, []string{"verify", "--repo", repoDir, "--keyring", blocker}, "keyring " + blocker},
		{"store error (directory)", nil, []string{"publish", "--repo", filepath.Join(blocker, "repo"), "--dist", "staging", "--key", key, v3}, blocker},
		{"store error (S3 unreachable)", map[string]string{"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"},
			[]string{"publish", "--repo", "s3://bucket/apt", "--endpoint", "http://127.0.0.1:1", "--key", key, "--dist", "staging", v3}, "connection refused"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			before := snapshot(t, repoDir)
			_, err := runCLI(t, tt.args...)
			if err == nil {
				t.Fatalf("succeeded")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q: want one line containing %q", msg, tt.want)
			}
			if snapshot(t, repoDir) != before {
				t.Errorf("the repository changed")
			}
		})
	}
}
