package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestResignAndValidFor(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	key := filepath.Join(dir, "signing.asc")
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", key)
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "s3cret")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	release := func() string {
		b, err := os.ReadFile(filepath.Join(repoDir, "dists/staging/Release"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	validUntil := regexp.MustCompile(`(?m)^Valid-Until: (.*)$`)
	period := func() time.Duration {
		rel := release()
		m := validUntil.FindStringSubmatch(rel)
		if m == nil {
			return 0
		}
		d := regexp.MustCompile(`(?m)^Date: (.*)$`).FindStringSubmatch(rel)
		vu, _ := time.Parse(time.RFC1123Z, m[1])
		dt, _ := time.Parse(time.RFC1123Z, d[1])
		return vu.Sub(dt)
	}
	if _, err := runCLI(t, "publish", "--repo", repoDir, "--dist", "staging", "--valid-for", "168h", testDeb(t, dir, "hello", "1.0-1")); err != nil {
		t.Fatal(err)
	}
	if p := period(); p != 168*time.Hour {
		t.Fatalf("publish --valid-for 168h: period %s\n%s", p, release())
	}
	if _, err := runCLI(t, "publish", "--repo", repoDir, "--dist", "staging", testDeb(t, dir, "hello", "1.1-1")); err != nil {
		t.Fatal(err)
	}
	if p := period(); p != 168*time.Hour {
		t.Fatalf("a publish without --valid-for changed the period to %s", p)
	}
	out, err := runCLI(t, "resign", "--repo", repoDir, "--dist", "staging", "--valid-for", "24h")
	if err != nil || !strings.HasPrefix(out, "resigned staging: Date ") || !strings.Contains(out, "valid until") {
		t.Fatalf("resign: %q %v", out, err)
	}
	if p := period(); p != 24*time.Hour {
		t.Fatalf("resign --valid-for 24h: period %s", p)
	}
	if out, err := runCLI(t, "list", "--repo", repoDir, "--dist", "staging"); err != nil || out != "hello 1.1-1 amd64\nhello 1.0-1 amd64\n" {
		t.Fatalf("list after resign: %q %v", out, err)
	}
	if out, err := runCLI(t, "resign", "--repo", repoDir, "--dist", "staging", "--valid-for", "0"); err != nil || !strings.Contains(out, "no Valid-Until") || period() != 0 {
		t.Fatalf("resign --valid-for 0: %q %v, period %s", out, err, period())
	}
	for _, tt := range []struct{ args, want string }{
		{"resign --repo " + repoDir + " --dist staging --valid-for -1h", "--valid-for -1h0m0s: must not be negative"},
		{"resign --repo " + repoDir + " --dist staging --valid-for 10s", "--valid-for 10s: shorter than a minute"},
		{"resign --repo " + repoDir + " --dist staging --valid-for soon", `invalid argument "soon"`},
		{"resign --repo " + repoDir + " --dist qa", "resign: repo: no such dist: qa"},
	} {
		before := snapshot(t, repoDir)
		_, err := runCLI(t, strings.Fields(tt.args)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want one line containing %q", tt.args, err, tt.want)
		}
		if snapshot(t, repoDir) != before {
			t.Errorf("%s changed the repository", tt.args)
		}
	}
}
