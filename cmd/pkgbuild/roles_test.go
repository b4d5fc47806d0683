package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/puller"
)

// TestRedisRolesCLI runs pkgbuild's Redis work as the roles of the roles
// file (terraform/modules/locks/roles.json.tftpl) against a real
// redis-server: every `pkgbuild fleet` command as the operator user, and
// promote --wait-rollout, yank and rollback with --redis as the CI user.
// Nothing they do may be refused (the ACL LOG stays empty); CI may not pause
// or forget, and neither role may flush or reconfigure Redis.
func TestRedisRolesCLI(t *testing.T) {
	rig := newFleetRig(t)
	roles := testenv.RedisRoles(t, "aptfleet:")
	pw := rig.srv.AddUsers(t, roles)
	as := func(role string) string {
		return "redis://" + url.UserPassword(roles[role].UserName, pw[role]).String() + "@" + rig.srv.Addr
	}
	ctx := context.Background()

	// The operator: every fleet command.
	t.Setenv("APTFLEET_REDIS_URL", as("operator"))
	ran := map[string]bool{}
	op := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append([]string{"fleet"}, args...)...)
		if err != nil {
			t.Fatalf("operator: fleet %s: %v", strings.Join(args, " "), err)
		}
		ran[args[0]] = true
		return out
	}
	op("status")
	op("status", "hello/production", "--json")
	op("pause", "hello/production", "--reason", "roles", "--actor", "alice")
	op("resume", "hello/production", "--actor", "alice")
	op("unbreak", "hello/staging", "1.5.0-1", "--reason", "roles", "--actor", "alice")
	op("forget", "hello/production", "i-3", "--actor", "alice")
	if _, err := rig.st.Join(ctx, "hello", "production", "1.4.0-1", "i-2", "", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	op("promote-canary", "hello/production", "1.4.0-1", "--reason", "roles", "--actor", "alice")
	if _, err := rig.st.Join(ctx, "hello", "production", "1.6.0-1", "i-1", "", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	op("promote-canary", "hello/production", "1.6.0-1", "--abort", "--reason", "roles", "--actor", "alice")
	if out := op("history", "hello/production"); !strings.Contains(out, "forgot host i-3") {
		t.Fatalf("operator: history lacks the forget:\n%s", out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var serveOut bytes.Buffer
	go func() { done <- run(sctx, []string{"fleet", "serve", "--listen", addr}, &serveOut, &serveOut) }()
	var page string
	for i := 0; i < 100 && page == ""; i++ {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			page = b.String()
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	stop()
	if err := <-done; err != nil || !strings.Contains(page, `id="env-hello-production"`) {
		t.Fatalf("operator: fleet serve: %v, page:\n%s", err, page)
	}
	ran["serve"] = true
	var missing []string
	for _, c := range newFleetCmd().Commands() {
		if !ran[c.Name()] {
			missing = append(missing, c.Name())
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("fleet commands this test does not run as the operator: %s (add them)", strings.Join(missing, ", "))
	}

	// CI: promote --wait-rollout, then yank and rollback recorded in the history.
	t.Setenv("APTFLEET_REDIS_URL", as("ci"))
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", "")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	dir := t.TempDir()
	repoDir, key := filepath.Join(dir, "repo"), filepath.Join(dir, "signing.asc")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.4.0-1", "1.5.0-1", "1.6.0-1"} {
		if _, err := runCLI(t, "publish", "--repo", repoDir, "--dist", "staging", "--key", key, debs.Write(t, dir, debs.Spec{Name: "hello", Version: v})); err != nil {
			t.Fatal(err)
		}
	}
	if err := rig.st.SetHost(ctx, "hello", "staging", "i-s1", "1.6.0-1", puller.StateOK); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"promote", "--from", "staging", "--to", "production", "--wait-rollout", "--poll", "50ms", "hello=1.6.0-1"},
		{"yank", "--dist", "staging", "hello=1.4.0-1", "--actor", "ci"},
		{"rollback", "--dist", "staging", "hello", "--reason", "roles", "--actor", "ci"},
	} {
		if out, err := runCLI(t, append(args, "--repo", repoDir, "--key", key)...); err != nil {
			t.Fatalf("ci: %s: %v\n%s", args[0], err, out)
		}
	}
	h, err := rig.st.History(ctx, "hello", "staging", 2)
	if err != nil || len(h) != 2 || h[0].Kind != event.Yanked || h[1].Kind != event.Rollback {
		t.Fatalf("ci: history of hello/staging ends with %+v (%v), want the yank and the rollback", h, err)
	}
	if p, err := rig.st.History(ctx, "hello", "production", 1); err != nil || len(p) != 1 || p[0].Kind != event.Promoted {
		t.Fatalf("ci: history of hello/production ends with %+v (%v), want the promote", p, err)
	}
	if denied := rig.srv.Denied(t); len(denied) > 0 {
		t.Fatalf("Redis refused the roles' own work (add the command or key to %s):\n%s", testenv.RolesFile, strings.Join(denied, "\n"))
	}

	// What CI and the operator must not do.
	for _, args := range [][]string{
		{"fleet", "pause", "hello/production", "--reason", "not ci's to do"},
		{"fleet", "forget", "hello/staging", "i-s1"},
	} {
		rig.refused(t, "NOPERM", args...)
	}
	for _, role := range []string{"ci", "operator"} {
		opts, err := redis.ParseURL(as(role))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opts)
		defer c.Close()
		for _, cmd := range [][]any{{"FLUSHALL"}, {"CONFIG", "SET", "appendonly", "no"}, {"SET", "other:key", "x"}, {"DEL", "aptfleet:hello:production:tokens"}} {
			if err := c.Do(ctx, cmd...).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
				t.Errorf("%s: %v: %v, want NOPERM", role, cmd, err)
			}
		}
	}
}
