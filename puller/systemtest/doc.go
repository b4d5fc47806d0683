// Package systemtest exercises the puller's host-side steps for real: on a
// Debian root booted with systemd-nspawn, puller/apt installs an app with
// apt-get from a signed repository served over HTTP, puller/systemd restarts
// its units and puller/health checks it; then an upgrade, a recovery from an
// interrupted dpkg with a downgrade, a release whose process cannot start, and
// the rollback. The tests live in systemtest_test.go.
package systemtest
