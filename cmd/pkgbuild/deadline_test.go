package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
)

// TestHungServer runs the built pkgbuild against versitygw stopped with
// SIGSTOP: with --timeout each command gives up with one line naming the
// endpoint and exit 1; without it, SIGTERM and SIGINT end it with one line
// and no SDK text; --deadline ends it too. The repository, read once the
// server runs again, has nothing a failed command reported as not done.
func TestHungServer(t *testing.T) {
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
	s3Env(t, srv)
	dir := t.TempDir()
	bin := filepath.Join(dir, "pkgbuild")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	key := filepath.Join(dir, "signing.asc")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	repoArgs := []string{"--repo", "s3://" + srv.Bucket + "/apt", "--endpoint", srv.URL, "--region", srv.Region, "--key", key}
	if _, err := runCLI(t, append([]string{"publish", "--dist", "staging", debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.0-1"})}, repoArgs...)...); err != nil {
		t.Fatal(err)
	}
	v2 := debs.Write(t, dir, debs.Spec{Name: "hello", Version: "2.0-1"})

	// start runs pkgbuild; wait returns its exit code and stderr, failing t
	// if it is still running after a minute (it hangs: the defect).
	start := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, append(args, repoArgs...)...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stderr
	}
	wait := func(cmd *exec.Cmd, stderr *bytes.Buffer) (int, string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s still running after a minute against a stopped server; stderr: %q", strings.Join(cmd.Args[1:3], " "), stderr.String())
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	oneLine := func(what, stderr string, want ...string) {
		t.Helper()
		msg := strings.TrimSuffix(stderr, "\n")
		t.Logf("%s: %s", what, msg)
		if strings.Contains(msg, "\n") || strings.Contains(msg, "StatusCode") || strings.Contains(msg, "RequestID") {
			t.Errorf("%s: want one line without SDK text, got %q", what, stderr)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: want %q in %q", what, w, msg)
			}
		}
	}

	s3server.Stop(t, srv)
	for _, args := range [][]string{
		{"list", "--dist", "staging", "--timeout", "2s"},
		{"publish", "--dist", "staging", v2, "--timeout", "2s"},
		{"publish", "--dist", "staging", v2, "--deadline", "3s"},
	} {
		code, stderr := wait(start(args...))
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", args, code)
		}
		oneLine(strings.Join(args, " "), stderr, "pkgbuild: ", map[bool]string{true: srv.URL, false: "deadline of 3s passed"}[args[len(args)-2] == "--timeout"])
	}
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		cmd, stderr := start("publish", "--dist", "staging", v2)
		time.Sleep(2 * time.Second)
		cmd.Process.Signal(sig)
		code, msg := wait(cmd, stderr)
		if code != 1 {
			t.Errorf("publish stopped by %v: exit %d, want 1", sig, code)
		}
		oneLine("publish stopped by "+sig.String(), msg, "pkgbuild: ", "signal")
	}
	if err := srv.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // let the server work off what it had queued
	out, err := runCLI(t, append([]string{"list", "--dist", "staging"}, repoArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "2.0-1") {
		t.Errorf("every publish failed, but staging has hello 2.0-1 once the server runs again:\n%s", out)
	}
}
