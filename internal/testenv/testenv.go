// Package testenv lets tests that need real outside tools (redis-server, serf,
// apt-get, lintian, systemd-nspawn, an S3-compatible server) say so.
//
// A missing tool skips the test with the reason on a developer machine. Under CI
// (CI or APTFLEET_NO_SKIP set in the environment) the same condition fails the
// test instead, so a green CI run means every test really ran.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Strict reports whether skips are turned into failures.
func Strict() bool {
	return os.Getenv("APTFLEET_NO_SKIP") != "" || os.Getenv("CI") != ""
}

// Skip skips t with reason, or fails it under Strict.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("required for this test and not available (skips are failures under CI): %s", reason)
	}
	t.Skip(reason)
}

// NeedTools skips (or fails under CI) unless every named program is on PATH.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			Skip(t, tool+" is not installed (run `make deps`)")
		}
	}
}

// NeedRoot skips (or fails under CI) unless the test runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root")
	}
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago,
// failing t when none can be had.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// TestRoot returns the cached debootstrapped Debian root that system tests
// boot with systemd-nspawn ($APTFLEET_TESTROOT, default
// /var/cache/aptfleet/testroot/bookworm, made by `make testroot`), after
// checking for root, systemd-nspawn and nsenter; it skips (or fails under
// CI) when any is missing.
func TestRoot(t testing.TB) string {
	t.Helper()
	NeedRoot(t)
	NeedTools(t, "systemd-nspawn", "nsenter")
	root := os.Getenv("APTFLEET_TESTROOT")
	if root == "" {
		root = "/var/cache/aptfleet/testroot/bookworm"
	}
	if _, err := os.Stat(filepath.Join(root, ".complete")); err != nil {
		Skip(t, "no Debian test root at "+root+" (run `make testroot`)")
	}
	return root
}
