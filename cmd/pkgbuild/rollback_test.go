package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
)

// TestRollbackYankPromote runs rollback, yank and promote against a
// repository on versitygw, with the history in a real redis-server.
func TestRollbackYankPromote(t *testing.T) {
	rig := newFleetRig(t)
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", "")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	dir := t.TempDir()
	key := filepath.Join(dir, "signing.asc")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	repoArgs := []string{"--repo", "s3://" + srv.Bucket + "/apt", "--endpoint", srv.URL, "--region", srv.Region, "--key", key}
	cli := func(args ...string) (string, error) {
		t.Helper()
		return runCLI(t, append(args, repoArgs...)...)
	}
	for _, v := range []string{"1.0-1", "1.1-1", "1.2-1"} {
		if _, err := cli("publish", "--dist", "production", testDeb(t, dir, "hello", v)); err != nil {
			t.Fatal(err)
		}
	}
	list := func() string {
		t.Helper()
		out, err := cli("list", "--dist", "production")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	out, err := cli("rollback", "--dist", "production", "hello", "--reason", "checkout errors", "--actor", "alice")
	if err != nil || !strings.Contains(out, "removed hello 1.2-1 amd64 from production") ||
		!strings.Contains(out, "the fleet will run hello 1.1-1 in production") {
		t.Fatalf("rollback: %q %v", out, err)
	}
	if l := list(); strings.Contains(l, "1.2-1") || !strings.Contains(l, "1.1-1") {
		t.Fatalf("after rollback:\n%s", l)
	}
	h, err := rig.st.History(context.Background(), "hello", "production", 1)
	if err != nil || len(h) != 1 || h[0].Kind != event.Rollback || h[0].Version != "1.1-1" || h[0].Removed != "1.2-1" || h[0].Actor != "alice" || h[0].Reason != "checkout errors" {
		t.Fatalf("history after rollback: %+v %v", h, err)
	}

	// Refusals change nothing: an unknown --to, a rollback that empties the dist.
	before := list()
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"hello=0.9-1 is not in production", []string{"--to", "0.9-1"}},
		{"would leave no version of it (it has only 1.0-1)", nil},
	} {
		if tc.args == nil {
			if _, err := cli("rollback", "--dist", "production", "hello", "--to", "1.0-1"); err != nil {
				t.Fatal(err)
			}
			before = list()
		}
		_, err := cli(append([]string{"rollback", "--dist", "production", "hello"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("rollback %v: %v, want one line with %q", tc.args, err, tc.want)
		}
		if list() != before {
			t.Fatalf("a refused rollback changed the dist")
		}
	}

	// yank is idempotent.
	if _, err := cli("publish", "--dist", "production", testDeb(t, dir, "hello", "1.3-1")); err != nil {
		t.Fatal(err)
	}
	if out, err := cli("yank", "--dist", "production", "hello=1.3-1"); err != nil || !strings.Contains(out, "yanked hello 1.3-1 amd64 from production") {
		t.Fatalf("yank: %q %v", out, err)
	}
	if out, err := cli("yank", "--dist", "production", "hello=1.3-1"); err != nil || !strings.Contains(out, "hello=1.3-1 already absent from production") {
		t.Fatalf("second yank: %q %v", out, err)
	}

	// promote of an older version than the dist's newest says so.
	for _, v := range []string{"0.9-1", "2.0-1"} {
		if _, err := cli("publish", "--dist", "staging", testDeb(t, dir, "hello", v)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := cli("promote", "--from", "staging", "--to", "production", "hello=2.0-1"); err != nil || strings.Contains(out, "older") {
		t.Fatalf("promote newer: %q %v", out, err)
	}
	out, err = cli("promote", "--from", "staging", "--to", "production", "hello=0.9-1", "--actor", "ci")
	if err != nil || !strings.Contains(out, "hello 0.9-1 is older than production's newest, 2.0-1: hosts stay on 2.0-1") {
		t.Fatalf("promote older: %q %v", out, err)
	}
	h, _ = rig.st.History(context.Background(), "hello", "production", 0)
	var kinds []string
	for _, e := range h {
		if !strings.HasPrefix(string(e.Kind), "rollout_") { // the agents' entries of newFleetRig
			kinds = append(kinds, string(e.Kind))
		}
	}
	if got := strings.Join(kinds, ","); got != "rollback,rollback,yanked,promoted,promoted" {
		t.Fatalf("history kinds: %s", got)
	}
}
