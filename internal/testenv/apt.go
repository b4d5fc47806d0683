package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Apt is an apt-get confined to a directory: its own sources, lists,
// cache and an empty dpkg status; it never reads the machine's sources.
type Apt struct {
	Dir string
}

// NewApt configures an apt that reads "deb [signed-by=keyring] url dist
// main", after checking for apt-get and root (apt's download sandbox user
// is root here).
func NewApt(t testing.TB, url, dist, keyring string) *Apt {
	t.Helper()
	return NewAptSource(t, fmt.Sprintf("deb [signed-by=%s] %s %s main", keyring, url, dist))
}

// NewAptSource configures an apt that reads the one source line given.
func NewAptSource(t testing.TB, source string) *Apt {
	t.Helper()
	NeedTools(t, "apt-get")
	NeedRoot(t)
	d := t.TempDir()
	for _, sub := range []string{"parts", "sparts", "lists/partial", "cache/archives/partial", "download"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d, "sources.list"), []byte(source+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &Apt{Dir: d}
}

// Args returns apt-get's arguments: the confining options, then args. A
// caller that runs apt-get its own way (through a wrapper that sets up an
// apt method) passes these.
func (a *Apt) Args(args ...string) []string {
	opts := []string{
		"-o", "Dir::Etc::main=/dev/null",
		"-o", "Dir::Etc::parts=" + filepath.Join(a.Dir, "parts"),
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(a.Dir, "sources.list"),
		"-o", "Dir::Etc::sourceparts=" + filepath.Join(a.Dir, "sparts"),
		"-o", "Dir::State::Lists=" + filepath.Join(a.Dir, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(a.Dir, "status"),
		"-o", "Dir::Cache=" + filepath.Join(a.Dir, "cache"),
		"-o", "APT::Sandbox::User=root",
		"-o", "APT::Architecture=amd64",
		"-o", "Acquire::Retries=0",
		"-o", "Debug::NoLocking=1",
		// apt's defaults, stated because the machine's own
		// /etc/apt/apt.conf.d is read despite Dir::Etc::parts above and may
		// turn them off (a mirror of snapshots does); without Check-Date apt
		// checks no Valid-Until either.
		"-o", "Acquire::Check-Valid-Until=true",
		"-o", "Acquire::Check-Date=true",
		"-q",
	}
	return append(opts, args...)
}

// Run runs apt-get with args and the confining options, in the download
// directory; it returns the combined output.
func (a *Apt) Run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return a.RunCmd(exec.CommandContext(ctx, "apt-get", a.Args(args...)...))
}

// RunCmd runs cmd, an apt-get given a.Args, in the download directory, and
// returns its combined output.
func (a *Apt) RunCmd(cmd *exec.Cmd) (string, error) {
	cmd.Dir = filepath.Join(a.Dir, "download")
	cmd.Env = append(cmd.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Update runs apt-get update and fails on any error or warning line
// (apt reports some signature and hash problems as warnings with exit 0).
func (a *Apt) Update(ctx context.Context) (string, error) {
	out, err := a.Run(ctx, "update")
	if err != nil {
		return out, err
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Err:") {
			return out, fmt.Errorf("apt-get update: %s", l)
		}
	}
	return out, nil
}

// Downloaded returns the path of a file apt-get download fetched.
func (a *Apt) Downloaded(name string) string { return filepath.Join(a.Dir, "download", name) }
