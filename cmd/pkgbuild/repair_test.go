package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepairCommand: verify names repair for a deleted by-hash index, and
// repair restores it.
func TestRepairCommand(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	key := filepath.Join(dir, "signing.asc")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "publish", "--repo", repoDir, "--dist", "staging", "--key", key, testDeb(t, dir, "hello", "1.0-1")); err != nil {
		t.Fatal(err)
	}
	byHash, _ := filepath.Glob(filepath.Join(repoDir, "dists/staging/main/binary-amd64/by-hash/SHA256/*"))
	for _, p := range byHash {
		os.Remove(p)
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"verify", "--repo", repoDir, "--key", key}, &out, &errOut)
	if err == nil || !strings.Contains(errOut.String(), "pkgbuild repair --repo "+repoDir) {
		t.Fatalf("verify: %v, stderr %q", err, errOut.String())
	}
	got, err := runCLI(t, "repair", "--repo", repoDir, "--dist", "staging", "--key", key)
	if err != nil || !strings.Contains(got, "restored dists/staging/main/binary-amd64/by-hash/SHA256/") || !strings.Contains(got, "nothing left broken") {
		t.Fatalf("repair: %v\n%s", err, got)
	}
	if got, err := runCLI(t, "verify", "--repo", repoDir, "--key", key); err != nil {
		t.Fatalf("verify after repair: %v\n%s", err, got)
	}
}
