package repo_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// serve serves the fixture's directory over HTTP, as a plain web server would.
func (f *fixture) serve() string {
	srv := httptest.NewServer(http.FileServer(http.Dir(f.root)))
	f.t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func TestAptAcceptsTheRepository(t *testing.T) {
	testenv.NeedTools(t, "apt-get", "dpkg-deb")
	ctx := context.Background()
	f := newFixture(t)
	f.publish("staging", f.deb("hello", "1.0-1"), f.deb("hello", "1.2-1"), f.deb("hello-doc", "1.2-1"))
	url := f.serve()

	apt := testenv.NewApt(t, url, "staging", f.key.Keyring)
	if out, err := apt.Update(ctx); err != nil {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	out, err := apt.Run(ctx, "download", "hello")
	if err != nil {
		t.Fatalf("apt-get download: %v\n%s", err, out)
	}
	deb := apt.Downloaded("hello_1.2-1_amd64.deb")
	ver, err := command("dpkg-deb", "-f", deb, "Version")
	if err != nil || strings.TrimSpace(ver) != "1.2-1" {
		t.Fatalf("downloaded %s: version %q %v", deb, ver, err)
	}
	// Install into a scratch root: apt resolves, downloads, verifies; dpkg unpacks.
	if os.Geteuid() == 0 {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "var/lib/dpkg/info"), 0o755)
		os.MkdirAll(filepath.Join(root, "var/lib/dpkg/updates"), 0o755)
		os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
		out, err := apt.Run(ctx, "install", "-y", "--no-install-recommends",
			"-o", "Dir::State::status="+filepath.Join(root, "var/lib/dpkg/status"),
			"-o", "DPkg::Options::=--root="+root, "-o", "DPkg::Options::=--force-script-chrootless",
			"-o", "DPkg::Options::=--log=/dev/null", "-o", "DPkg::Run-Directory=/",
			"-o", "DPkg::Options::=--force-not-root", "-o", "DPkg::Chroot-Directory=/",
			"hello=1.0-1")
		if err != nil {
			t.Fatalf("apt-get install: %v\n%s", err, out)
		}
		got, err := os.ReadFile(filepath.Join(root, "usr/share/hello/payload"))
		if err != nil || string(got) != "hello 1.0-1\n" {
			t.Fatalf("installed payload %q %v\n%s", got, err, out)
		}
	}

	t.Run("wrong key", func(t *testing.T) {
		other := repotest.NewKey(t, t.TempDir(), "")
		apt := testenv.NewApt(t, url, "staging", other.Keyring)
		out, err := apt.Update(ctx)
		if err == nil || !strings.Contains(out, "NO_PUBKEY") && !strings.Contains(out, "not signed") {
			t.Fatalf("apt-get update with the wrong key: err %v\n%s", err, out)
		}
	})
	t.Run("tampered Packages", func(t *testing.T) {
		// Rewrite every stored copy of the index (by hash and plain path)
		// with a different version: a mirror or bucket writer gone rogue.
		m, _ := filepath.Glob(filepath.Join(f.root, "dists/staging/main/binary-amd64/by-hash/SHA256/*"))
		m = append(m, filepath.Join(f.root, "dists/staging/main/binary-amd64/Packages.gz"))
		for _, p := range m {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			z, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := io.ReadAll(z)
			var out bytes.Buffer
			w := gzip.NewWriter(&out)
			w.Write(bytes.ReplaceAll(plain, []byte("1.2-1"), []byte("9.9-9")))
			w.Close()
			if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		apt := testenv.NewApt(t, url, "staging", f.key.Keyring)
		out, err := apt.Update(ctx)
		if err == nil || !strings.Contains(out, "Hash Sum mismatch") && !strings.Contains(out, "File has unexpected size") {
			t.Fatalf("apt-get update of a tampered index: err %v\n%s", err, out)
		}
		if out, _ := apt.Run(ctx, "download", "hello=9.9-9"); !strings.Contains(out, "E:") {
			t.Fatalf("apt found the tampered version:\n%s", out)
		}
	})
}

// TestGpgvAcceptsSignatures checks both signatures with Debian's gpgv:
// InRelease (clearsigned) and Release.gpg (detached, over Release).
func TestGpgvAcceptsSignatures(t *testing.T) {
	testenv.NeedTools(t, "gpgv")
	f := newFixture(t)
	f.publish("staging", f.deb("hello", "1.0-1"))
	d := filepath.Join(f.root, "dists/staging")
	if out, err := command("gpgv", "--keyring", f.key.Keyring, filepath.Join(d, "InRelease")); err != nil {
		t.Fatalf("gpgv InRelease: %v\n%s", err, out)
	}
	if out, err := command("gpgv", "--keyring", f.key.Keyring, filepath.Join(d, "Release.gpg"), filepath.Join(d, "Release")); err != nil {
		t.Fatalf("gpgv Release.gpg: %v\n%s", err, out)
	}
	other := repotest.NewKey(t, t.TempDir(), "")
	if out, err := command("gpgv", "--keyring", other.Keyring, filepath.Join(d, "InRelease")); err == nil {
		t.Fatalf("gpgv accepted InRelease with another key:\n%s", out)
	}
}

// TestAptlyMirrorAcceptsTheRepository has Debian's aptly, a strict
// third-party consumer, mirror a dist: signature, Release and index checks,
// pool download.
func TestAptlyMirrorAcceptsTheRepository(t *testing.T) {
	testenv.NeedTools(t, "aptly", "gpgv")
	f := newFixture(t)
	f.publish("staging", f.deb("hello", "1.0-1"), f.deb("hello", "1.1-1"))
	url := f.serve()
	dir := t.TempDir()
	conf := filepath.Join(dir, "aptly.conf")
	os.WriteFile(conf, []byte(`{"rootDir": "`+filepath.Join(dir, "root")+`", "gpgProvider": "gpg"}`), 0o644)
	aptly := func(args ...string) (string, error) {
		return command("aptly", append([]string{"-config=" + conf}, args...)...)
	}
	if out, err := aptly("mirror", "create", "-keyring="+f.key.Keyring, "-architectures=amd64", "m", url, "staging", "main"); err != nil {
		t.Fatalf("aptly mirror create: %v\n%s", err, out)
	}
	out, err := aptly("mirror", "update", "-keyring="+f.key.Keyring, "m")
	if err != nil || !strings.Contains(out, "successfully updated") {
		t.Fatalf("aptly mirror update: %v\n%s", err, out)
	}
	out, err = aptly("mirror", "show", "-with-packages", "m")
	if err != nil || !strings.Contains(out, "hello_1.0-1_amd64") || !strings.Contains(out, "hello_1.1-1_amd64") {
		t.Fatalf("aptly mirror show: %v\n%s", err, out)
	}
	other := repotest.NewKey(t, t.TempDir(), "")
	if out, err := aptly("mirror", "create", "-keyring="+other.Keyring, "-architectures=amd64", "bad", url, "staging", "main"); err == nil {
		t.Fatalf("aptly accepted the dist with another key:\n%s", out)
	}
}
