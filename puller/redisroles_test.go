package puller_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/redislock"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// login rebinds the testbed's semaphore and state store to a client of its
// redis-server logged in as user, so the agents it makes afterwards speak
// to Redis as that user.
func (tb *testbed) login(user, password string) *redis.Client {
	tb.t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: tb.redis.Addr, Username: user, Password: password,
		MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	tb.t.Cleanup(func() { rdb.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tb.rdb = rdb
	tb.sem = redislock.New(rdb, redislock.Options{Prefix: "aptfleet:", TTL: tb.cfg.LockTTL, PollEvery: 50 * time.Millisecond, Logger: quiet})
	tb.state = redisstate.New(rdb, redisstate.Options{})
	return rdb
}

// TestRedisRoles runs the agents' work against a real redis-server as the
// instance role of the roles file (terraform/modules/locks/roles.json.tftpl):
// a rollout, a failed release branded and rolled back, and a pause and
// resume by the operator role, with no command refused (the ACL LOG stays
// empty); then shows what the instance role cannot do: FLUSHALL, CONFIG, a
// write outside the key prefix, ACL changes. The CI role may read the state
// and append to the history only. docs/redis.md lists each role's ACL string
// as the file renders it for the default prefix.
//
// APTFLEET_ROLES_SHARED_TOKEN=1 runs the instance's part as the default
// user, the one credential every client shared before the roles: the
// refusals then fail (FLUSHALL succeeds).
func TestRedisRoles(t *testing.T) {
	roles := testenv.RedisRoles(t, "aptfleet:")
	checkRolesDocumented(t, roles)
	tb := newTestbed(t)
	pw := tb.redis.AddUsers(t, roles)
	ctx := context.Background()
	user := func(role string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: tb.redis.Addr, Username: roles[role].UserName, Password: pw[role]})
		t.Cleanup(func() { c.Close() })
		return c
	}
	instance := tb.login(roles["instance"].UserName, pw["instance"])
	if os.Getenv("APTFLEET_ROLES_SHARED_TOKEN") != "" {
		// What every client has today: one credential, the default user's.
		instance = tb.login("", "")
	}
	operator := redisstate.New(user("operator"), redisstate.Options{})

	// A rollout, then a release that fails its health check: rolled back
	// and branded.
	agents, once := tb.rolloutThenFailure(t)
	hosts := []string{"i-1", "i-2", "i-3"}
	if b, err := tb.state.IsBroken(ctx, "hello", "staging", "1.2-1"); err != nil || b == nil {
		t.Fatalf("1.2-1 not branded: %v %v", b, err)
	}
	for _, a := range agents {
		if err := once(a); err != nil {
			t.Fatal(err)
		}
	}
	// Paused by the operator: the agents hold, reading the pause as the
	// instance user; resumed: the release rolls.
	ev := func(k event.Kind) event.Deploy {
		return event.New(k, "hello", "staging", "", "ops", time.Now())
	}
	if _, _, err := operator.SetPause(ctx, "hello", "staging", redisstate.Pause{Actor: "ops", Reason: "test"}, ev(event.Paused)); err != nil {
		t.Fatal(err)
	}
	tb.index.publish("1.3-1")
	for _, a := range agents {
		once(a) // a held cycle may report the pause; what it installs is checked below
	}
	if n := len(tb.fleet.installsOf("1.3-1")); n != 0 {
		t.Fatalf("1.3-1 installed %d times while paused", n)
	}
	if _, err := operator.ClearPause(ctx, "hello", "staging", ev(event.Resumed)); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if err := once(a); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range hosts {
		if v := tb.fleet.versionOf(h); v != "1.3-1" {
			t.Fatalf("%s runs %s after the resume, want 1.3-1", h, v)
		}
	}
	// A canary stage, the instances' side: places taken, renewed, ready,
	// given up, the stage passed; another version's stage failed.
	wctx, stopWake := context.WithCancel(ctx)
	defer stopWake()
	wake := tb.state.Wake(wctx, "hello", "staging")
	for _, h := range hosts[:2] {
		if v, err := tb.state.Join(ctx, "hello", "staging", "1.4-1", h, "srv-"+h, 2, time.Minute); err != nil || !v.Canary {
			t.Fatalf("canary: %s joins: %+v %v", h, v, err)
		}
	}
	if _, _, _, err := tb.state.Peek(ctx, "hello", "staging", "1.4-1", hosts[0]); err != nil {
		t.Fatalf("canary: peek: %v", err)
	}
	if _, err := tb.state.Renew(ctx, "hello", "staging", "1.4-1", hosts[0], time.Minute); err != nil {
		t.Fatalf("canary: renew: %v", err)
	}
	if _, err := tb.state.Ready(ctx, "hello", "staging", "1.4-1", hosts[0]); err != nil {
		t.Fatalf("canary: ready: %v", err)
	}
	if err := tb.state.Leave(ctx, "hello", "staging", "1.4-1", hosts[1]); err != nil {
		t.Fatalf("canary: leave: %v", err)
	}
	if stage, _, err := tb.state.Pass(ctx, "hello", "staging", "1.4-1", hosts[0], "analysis passed", false); err != nil || stage != puller.CanaryPassed {
		t.Fatalf("canary: pass: %s %v", stage, err)
	}
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatal("canary: no wake-up on the stage's channel")
	}
	if _, _, err := tb.state.CanaryStageOf(ctx, "hello", "staging", "1.4-1"); err != nil {
		t.Fatalf("canary: stage: %v", err)
	}
	if _, err := tb.state.Join(ctx, "hello", "staging", "1.5-1", hosts[2], "", 1, time.Minute); err != nil {
		t.Fatalf("canary: join 1.5-1: %v", err)
	}
	if _, err := tb.state.Fail(ctx, "hello", "staging", "1.5-1", hosts[2], "health check: 503"); err != nil {
		t.Fatalf("canary: fail: %v", err)
	}
	if st, err := tb.state.Status(ctx, "hello", "staging", 0); err != nil || len(st.Hosts) != 3 {
		t.Fatalf("status as the instance: %+v %v", st, err)
	}
	// CI: waits on the rollout and appends to the history.
	ci := redisstate.New(user("ci"), redisstate.Options{})
	if _, err := ci.WaitRollout(ctx, "hello", "staging", "1.3-1", redisstate.WaitOptions{Poll: 10 * time.Millisecond}); err != nil {
		t.Fatalf("ci: wait for the rollout: %v", err)
	}
	if err := ci.Record(ctx, event.New(event.Promoted, "hello", "staging", "1.3-1", "ci", time.Now())); err != nil {
		t.Fatalf("ci: record a promote: %v", err)
	}
	if denied := tb.redis.Denied(t); len(denied) > 0 {
		t.Fatalf("Redis refused the roles' own work (add the command or key to %s):\n%s", testenv.RolesFile, strings.Join(denied, "\n"))
	}

	// What the roles must not do.
	refused := []struct {
		role string
		c    *redis.Client
		args []any
	}{
		{"instance", instance, []any{"FLUSHALL"}},
		{"instance", instance, []any{"CONFIG", "GET", "requirepass"}},
		{"instance", instance, []any{"CONFIG", "SET", "appendonly", "no"}},
		{"instance", instance, []any{"SET", "other:key", "x"}},
		{"instance", instance, []any{"DEL", "other:key"}},
		{"instance", instance, []any{"ACL", "SETUSER", "intruder", "on", ">x", "+@all", "~*"}},
		{"instance", instance, []any{"KEYS", "*"}},
		{"ci", user("ci"), []any{"HSET", "aptfleet:hello:staging:hosts", "i-9", "{}"}},
		{"ci", user("ci"), []any{"DEL", "aptfleet:hello:staging:broken"}},
		{"ci", user("ci"), []any{"FLUSHALL"}},
		{"operator", user("operator"), []any{"DEL", "aptfleet:hello:staging:slots"}},
		{"operator", user("operator"), []any{"FLUSHALL"}},
		{"operator", user("operator"), []any{"CONFIG", "GET", "*"}},
	}
	for _, r := range refused {
		err := r.c.Do(ctx, r.args...).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("%s: %v: err %v, want NOPERM", r.role, r.args, err)
		}
	}
	if n := tb.redis.Admin(t).DBSize(ctx).Val(); n == 0 {
		t.Error("the database is empty after the refused commands")
	}
}

// checkRolesDocumented holds docs/redis.md's "Roles" table to the roles
// file: one row per role, with its user name and its ACL string as the file
// renders it for the default prefix.
func checkRolesDocumented(t *testing.T, roles map[string]testenv.RedisRole) {
	t.Helper()
	doc, err := os.ReadFile("../docs/redis.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if _, ok := roles[name]; ok {
			rows[name] = cells[2:]
		}
	}
	for name, r := range roles {
		row, ok := rows[name]
		if !ok {
			t.Errorf("docs/redis.md has no row for role %s", name)
			continue
		}
		if got := strings.Trim(strings.TrimSpace(row[0]), "`"); got != r.UserName {
			t.Errorf("docs/redis.md: role %s's user is %q, the roles file says %q", name, got, r.UserName)
		}
		if got := strings.Trim(strings.TrimSpace(row[2]), "`"); got != r.AccessString {
			t.Errorf("docs/redis.md: role %s's ACL string is\n%s\nthe roles file renders\n%s\nthe row should read:\n| `%s` | `%s` | %s | `%s` |",
				name, got, r.AccessString, name, r.UserName, r.About, r.AccessString)
		}
	}
}
