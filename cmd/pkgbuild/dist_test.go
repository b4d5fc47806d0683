package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistShowJSON: dist list and delete, show, list --long and the
// --json forms, and --origin/--label, through the command line.
func TestDistShowJSON(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	key, pub := filepath.Join(dir, "signing.asc"), filepath.Join(dir, "repo.gpg")
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", "")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	if _, err := runCLI(t, "key", "generate", "--out", key, "--public", pub); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	v1 := testDeb(t, dir, "hello", "1.0-1")
	must("publish", "--repo", repoDir, "--dist", "staging", "--key", key, "--origin", "Acme", "--label", "Acme apps", v1)
	must("publish", "--repo", repoDir, "--dist", "scratch", "--key", key, testDeb(t, dir, "tmp", "1"))

	var dists []struct {
		Name     string `json:"name"`
		Origin   string `json:"origin"`
		Label    string `json:"label"`
		Packages int    `json:"packages"`
	}
	if err := json.Unmarshal([]byte(must("dist", "list", "--repo", repoDir, "--keyring", pub, "--json")), &dists); err != nil {
		t.Fatal(err)
	}
	if len(dists) != 2 || dists[1].Name != "staging" || dists[1].Origin != "Acme" || dists[1].Label != "Acme apps" || dists[1].Packages != 1 {
		t.Errorf("dist list --json: %+v", dists)
	}
	if out := must("dist", "list", "--repo", repoDir, "--keyring", pub); !strings.Contains(out, `staging `) || !strings.Contains(out, `1 entries origin="Acme" label="Acme apps"`) {
		t.Errorf("dist list: %q", out)
	}

	if out := must("list", "--repo", repoDir, "--dist", "staging", "--keyring", pub, "--long"); !strings.HasPrefix(out, "hello 1.0-1 amd64 main ") || !strings.HasSuffix(out, " pool/main/h/hello/hello_1.0-1_amd64.deb\n") {
		t.Errorf("list --long: %q", out)
	}
	var pkgs []struct {
		Name, Version, Filename string
		Fields                  map[string]string
	}
	if err := json.Unmarshal([]byte(must("list", "--repo", repoDir, "--dist", "staging", "--keyring", pub, "--json")), &pkgs); err != nil || len(pkgs) != 1 || pkgs[0].Version != "1.0-1" {
		t.Errorf("list --json: %+v %v", pkgs, err)
	}
	if out := must("show", "--repo", repoDir, "--dist", "staging", "--keyring", pub, "hello=1.0-1"); !strings.HasPrefix(out, "Package: hello\n") || !strings.Contains(out, "\nFilename: pool/main/h/hello/hello_1.0-1_amd64.deb\n") {
		t.Errorf("show: %q", out)
	}
	if err := json.Unmarshal([]byte(must("show", "--repo", repoDir, "--dist", "staging", "--keyring", pub, "--json", "hello=1.0-1")), &pkgs); err != nil || len(pkgs) != 1 || pkgs[0].Fields["Maintainer"] != "tests <tests@aptfleet.invalid>" {
		t.Errorf("show --json: %+v %v", pkgs, err)
	}
	if _, err := runCLI(t, "show", "--repo", repoDir, "--dist", "staging", "--keyring", pub, "hello=9"); err == nil || err.Error() != "show: hello=9 is not in staging" {
		t.Errorf("show of a missing version: %v", err)
	}

	before := snapshot(t, repoDir)
	if _, err := runCLI(t, "dist", "delete", "--repo", repoDir, "--key", key, "scratch"); err == nil || !strings.Contains(err.Error(), "scratch has 1 index entries") {
		t.Errorf("dist delete of a dist with packages: %v", err)
	}
	if snapshot(t, repoDir) != before {
		t.Error("the refused delete changed the repository")
	}
	must("dist", "delete", "--repo", repoDir, "--key", key, "--force", "scratch")
	var rep struct {
		Dists    []string `json:"dists"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(must("verify", "--repo", repoDir, "--keyring", pub, "--json")), &rep); err != nil || strings.Join(rep.Dists, ",") != "staging" || len(rep.Problems) != 0 {
		t.Errorf("verify --json after the delete: %+v %v", rep, err)
	}
	if _, err := runCLI(t, "list", "--repo", repoDir, "--dist", "scratch", "--keyring", pub); err == nil || !strings.Contains(err.Error(), "no such dist: scratch") {
		t.Errorf("list of the deleted dist: %v", err)
	}
}
