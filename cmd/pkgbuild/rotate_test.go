package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/repo"
)

// TestKeyRotationWithKeyringPackage runs the rotation runbook of
// docs/repository.md with the commands, served over HTTP to two real apt
// clients installed with the old key: one takes the keyring package (apt
// downloads it from the repository, dpkg unpacks it, its source then says
// signed-by=/usr/share/keyrings/NAME.gpg) and keeps updating through the
// rotation; the other never gets it and fails after --finish alone, with
// apt's NO_PUBKEY.
func TestKeyRotationWithKeyringPackage(t *testing.T) {
	testenv.NeedTools(t, "apt-get", "dpkg-deb", "lintian")
	ctx := context.Background()
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", "")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	oldKey, oldPub := filepath.Join(dir, "old.asc"), filepath.Join(dir, "old.gpg")
	newKey, newPub := filepath.Join(dir, "new.asc"), filepath.Join(dir, "new.gpg")
	for _, k := range [][2]string{{oldKey, oldPub}, {newKey, newPub}} {
		if _, err := runCLI(t, "key", "generate", "--out", k[0], "--public", k[1]); err != nil {
			t.Fatal(err)
		}
	}
	cli := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("pkgbuild %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	fingerprint := func(pub string) string {
		k, err := repo.LoadKeyring(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k.Fingerprints()[0]
	}
	oldFP, newFP := fingerprint(oldPub), fingerprint(newPub)
	// apt's If-Modified-Since is dropped: the file server's dates have
	// one-second resolution, and the steps change InRelease within the
	// second apt last fetched it.
	fs := http.FileServer(http.Dir(repoDir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("If-Modified-Since")
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	const name = "aptfleet-archive-keyring"
	publish := func(t *testing.T, key string, debs ...string) {
		t.Helper()
		cli(t, append([]string{"publish", "--repo", repoDir, "--dist", "production", "--key", key}, debs...)...)
	}

	// Before the rotation: version 1 of the keyring package holds the old key.
	publish(t, oldKey, debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.0-1"}))
	kr1 := strings.TrimSpace(cli(t, "keyring", "build", "--repo", repoDir, "--version", "1", "--maintainer", "Ops <ops@example.com>", "--out", filepath.Join(dir, "dist")))
	publish(t, oldKey, kr1)
	withPackage := testenv.NewApt(t, srv.URL+"/", "production", oldPub)
	oldOnly := testenv.NewApt(t, srv.URL+"/", "production", oldPub)
	update := func(t *testing.T, a *testenv.Apt) {
		t.Helper()
		if out, err := a.Update(ctx); err != nil {
			t.Fatalf("apt-get update: %v\n%s", err, out)
		}
	}
	// takeKeyring is what the puller does with the keyring package on a
	// host: apt fetches the newest version, dpkg installs it (here: unpacks
	// it into the host's directory), and the source trusts its file.
	takeKeyring := func(t *testing.T, a *testenv.Apt) {
		t.Helper()
		update(t, a)
		if out, err := a.Run(ctx, "download", name); err != nil {
			t.Fatalf("apt-get download %s: %v\n%s", name, err, out)
		}
		files, _ := filepath.Glob(a.Downloaded(name + "_*_all.deb"))
		newest := files[len(files)-1]
		root := filepath.Join(a.Dir, "root")
		if out, err := exec.Command("dpkg-deb", "-x", newest, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
		}
		keyring := filepath.Join(root, "usr/share/keyrings", name+".gpg")
		line := "deb [signed-by=" + keyring + "] " + srv.URL + "/ production main\n"
		if err := os.WriteFile(filepath.Join(a.Dir, "sources.list"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	takeKeyring(t, withPackage)
	update(t, withPackage)

	t.Run("rotate signs with both keys", func(t *testing.T) {
		out := cli(t, "key", "rotate", "--repo", repoDir, "--key", oldKey, "--new-key", newKey)
		if want := "signed with " + oldFP + " and " + newFP + ": production\n"; out != want {
			t.Errorf("key rotate printed %q, want %q", out, want)
		}
		out = cli(t, "verify", "--repo", repoDir, "--keyring", oldPub)
		if want := "production: signed by " + oldFP + ", key ID "; !strings.Contains(out, want) {
			t.Errorf("verify printed %q, want a line starting %q", out, want)
		}
	})
	t.Run("the keyring package carries both keys and is lintian clean", func(t *testing.T) {
		kr2 := strings.TrimSpace(cli(t, "keyring", "build", "--repo", repoDir, "--version", "2", "--maintainer", "Ops <ops@example.com>", "--out", filepath.Join(dir, "dist")))
		if filepath.Base(kr2) != name+"_2_all.deb" {
			t.Errorf("keyring build wrote %s", kr2)
		}
		x := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-x", kr2, x).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
		}
		k, err := repo.LoadKeyring(filepath.Join(x, "usr/share/keyrings", name+".gpg"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(k.Fingerprints(), " "); got != oldFP+" "+newFP {
			t.Errorf("keyring holds %s, want the old and the new key", got)
		}
		out, _ := exec.Command("lintian", "--no-tag-display-limit", kr2).CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			// The generated one-entry changelog closes no bug, as for
			// every package pkgbuild builds (docs/packaging.md).
			if regexp.MustCompile(`^[EWX]: `).MatchString(l) && !strings.Contains(l, "initial-upload-closes-no-bugs") {
				t.Errorf("lintian: %s", l)
			}
		}
		publish(t, oldKey, kr2, debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.1-1"}))
		takeKeyring(t, withPackage)
		update(t, withPackage)
		update(t, oldOnly)
	})
	t.Run("finish: the host with the keyring package keeps updating", func(t *testing.T) {
		out := cli(t, "key", "rotate", "--repo", repoDir, "--key", oldKey, "--new-key", newKey, "--finish")
		if want := "signed with " + newFP + " alone, " + oldFP + " no longer trusted: production\n"; out != want {
			t.Errorf("key rotate --finish printed %q, want %q", out, want)
		}
		publish(t, newKey, debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.2-1"}))
		update(t, withPackage)
		if out, err := withPackage.Run(ctx, "download", "hello"); err != nil {
			t.Errorf("apt-get download hello after the finish: %v\n%s", err, out)
		}
		if _, err := os.Stat(withPackage.Downloaded("hello_1.2-1_amd64.deb")); err != nil {
			t.Errorf("apt did not fetch hello 1.2-1 after the finish: %v", err)
		}
		out = cli(t, "verify", "--repo", repoDir, "--keyring", newPub)
		if want := "production: signed by " + newFP + "\n"; !strings.Contains(out, want) {
			t.Errorf("verify printed %q, want %q", out, want)
		}
	})
	t.Run("finish: the host without it fails with NO_PUBKEY", func(t *testing.T) {
		out, err := oldOnly.Update(ctx)
		if err == nil || !strings.Contains(out, "NO_PUBKEY") {
			t.Errorf("apt-get update with the old key alone: %v, want NO_PUBKEY:\n%s", err, out)
		}
	})
	t.Run("finish: the old key cannot publish", func(t *testing.T) {
		_, err := runCLI(t, "publish", "--repo", repoDir, "--dist", "production", "--key", oldKey,
			debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.3-1"}))
		if err == nil || !strings.Contains(err.Error(), "signing key not trusted by this repository") {
			t.Errorf("publish with the old key: %v", err)
		}
	})
}

// TestKeyringBuildErrors: bad input gets one line and no package.
func TestKeyringBuildErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "dist")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"keyring", "build", "--version", "1", "--maintainer", "A <a@example.com>", "--out", out}, "give the keys with --repo URL or with --public FILE"},
		{[]string{"keyring", "build", "--repo", filepath.Join(dir, "empty"), "--version", "1", "--maintainer", "A <a@example.com>", "--out", out}, "records no trusted keys"},
		{[]string{"keyring", "build", "--public", filepath.Join(dir, "none.gpg"), "--version", "1", "--maintainer", "A <a@example.com>", "--out", out}, "none.gpg: no such file"},
		{[]string{"keyring", "build", "--public", "x.gpg", "--version", "1 0", "--maintainer", "A <a@example.com>", "--out", out}, "--version:"},
		{[]string{"keyring", "build", "--public", "x.gpg", "--name", "Keys", "--version", "1", "--maintainer", "A <a@example.com>", "--out", out}, "--name:"},
	}
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	for _, tt := range tests {
		_, err := runCLI(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*")); len(files) > 0 {
		t.Errorf("a failed keyring build left %v", files)
	}
}
