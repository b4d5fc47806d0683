package fleetview_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/fleetview"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// TestBadData writes records no agent writes into a real redis-server and
// checks that the view shows each as what it is, and that one app/env's bad
// key does not spoil another's.
func TestBadData(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := redisstate.New(rdb, redisstate.Options{Now: func() time.Time { return now.Add(-time.Minute) }})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// good/prod: a sound app/env beside the bad ones.
	must(st.SetHost(ctx, "good", "prod", "i-1", "1.0", "ok"))
	// bad/prod: an unparsable record, a record from the future, control
	// characters, a garbage rollout hash.
	must(st.SetHost(ctx, "bad", "prod", "i-ok", "1.0", "ok"))
	must(rdb.HSet(ctx, "aptfleet:bad:prod:hosts", "i-junk", "not json {").Err())
	future, _ := json.Marshal(map[string]any{"version": "1.0", "state": "ok", "at": now.Add(24 * 365 * time.Hour)})
	must(rdb.HSet(ctx, "aptfleet:bad:prod:hosts", "i-future", future).Err())
	evil, _ := json.Marshal(map[string]any{"version": "1.0\x1b[2J", "state": "ok\r\nFAKE LINE", "at": now})
	must(rdb.HSet(ctx, "aptfleet:bad:prod:hosts", "i-\x1b]0;owned\x07", evil).Err())
	must(rdb.HSet(ctx, "aptfleet:bad:prod:rollout:1.0", "total", "0", "done", "-5", "failed", "9223372036854775807",
		"started", now.Add(-time.Hour).Format(time.RFC3339Nano)).Err())
	// wrong/prod: the hosts key is a string.
	must(rdb.Set(ctx, "aptfleet:wrong:prod:hosts", "oops", 0).Err())
	must(rdb.HSet(ctx, "aptfleet:wrong:prod:broken", "2.0", "by hand").Err())

	envs, err := fleetview.Read(ctx, st, nil, now, fleetview.Options{})
	must(err)
	var buf bytes.Buffer
	fleetview.Text(&buf, envs, now)
	out := buf.String()
	t.Logf("\n%s", out)
	if strings.ContainsAny(out, "\x1b\x07\r") {
		t.Errorf("raw control characters reached the output")
	}
	for _, want := range []string{
		"good/prod  idle", "i-1   1.0",
		"i-junk", "unreadable         not json {",
		"i-future", "dated in the future",
		`"i-\x1b]0;owned\a"`, `"1.0\x1b[2J"`, `"ok\r\nFAKE LINE"`,
		"rollout 1.0: unreadable (done=-5, failed=9223372036854775807)",
		"wrong/prod  unreadable", "UNREADABLE: aptfleet:wrong:prod:hosts: WRONGTYPE",
		"broken 2.0: by hand",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "-5/0") {
		t.Error("garbage counts printed as progress")
	}
	bad := envs[0]
	if bad.App != "bad" {
		t.Fatalf("envs sorted: %+v", envs)
	}
	for _, h := range bad.Hosts {
		if h.Name == "i-future" && h.Live {
			t.Error("a record dated a year ahead is live")
		}
	}
	if len(bad.Versions) != 2 || bad.Versions[0].Hosts != 1 || bad.Versions[1].Hosts != 1 {
		t.Errorf("live versions of bad/prod: %+v (want 1.0 on i-ok and 1.0\\x1b[2J apart)", bad.Versions)
	}
	var j bytes.Buffer
	must(fleetview.JSON(&j, envs))
	if !json.Valid(j.Bytes()) {
		t.Fatal("JSON view is not JSON")
	}

	// A lost connection is an error, not a view.
	srv.Kill()
	if _, err := fleetview.Read(ctx, st, nil, now, fleetview.Options{}); err == nil {
		t.Fatal("read with redis down: no error")
	}
}

// TestStages checks the stage each combination of records shows.
func TestStages(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := redisstate.New(rdb, redisstate.Options{Now: func() time.Time { return now }})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	stage := func() string {
		t.Helper()
		envs, err := fleetview.Read(ctx, st, []redisstate.AppEnv{{App: "hello", Env: "prod"}}, now, fleetview.Options{})
		must(err)
		return envs[0].Stage
	}
	must(st.SetHost(ctx, "hello", "prod", "i-1", "1.0", "ok"))
	must(st.SetHost(ctx, "hello", "prod", "i-2", "1.0", "ok"))
	if s := stage(); s != fleetview.StageIdle {
		t.Fatalf("no rollout: %s", s)
	}
	must(st.StartRollout(ctx, "hello", "prod", "1.1", 2))
	if s := stage(); s != fleetview.StageRolling {
		t.Fatalf("started: %s", s)
	}
	_, _, err := st.SetPause(ctx, "hello", "prod", redisstate.Pause{Actor: "a", Reason: "r"}, event.New(event.Paused, "hello", "prod", "", "", now))
	must(err)
	if s := stage(); s != fleetview.StagePaused {
		t.Fatalf("paused: %s", s)
	}
	_, err = st.ClearPause(ctx, "hello", "prod", event.New(event.Resumed, "hello", "prod", "", "", now))
	must(err)
	_, err = st.FinishHost(ctx, "hello", "prod", "1.1", false)
	must(err)
	_, err = st.MarkBroken(ctx, "hello", "prod", "1.1", puller.Broken{Reason: "503", Host: "i-1"})
	must(err)
	if s := stage(); s != fleetview.StageHalted {
		t.Fatalf("broken: %s", s)
	}
	_, err = st.Unbreak(ctx, "hello", "prod", "1.1", event.New(event.Unbroken, "hello", "prod", "1.1", "", now))
	must(err)
	if s := stage(); s != fleetview.StageRolling {
		t.Fatalf("unbroken: %s", s)
	}
	for _, h := range []string{"i-1", "i-2"} {
		_, err = st.FinishHost(ctx, "hello", "prod", "1.1", true)
		must(err)
		must(st.SetHost(ctx, "hello", "prod", h, "1.1", "ok"))
	}
	if s := stage(); s != fleetview.StageDone {
		t.Fatalf("every host done: %s", s)
	}
}

// TestRolloutsSuperseded: a rollout still counting a host that died ends,
// in the history, when the next rollout starts; a rollback's step down is a
// rollout of its own, by the rollback's actor.
func TestRolloutsSuperseded(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := func(k event.Kind, v string, min int) fleetview.Entry {
		return fleetview.Entry{Deploy: event.New(k, "hello", "prod", v, "", at.Add(time.Duration(min)*time.Minute))}
	}
	rb := ev(event.Rollback, "1.4", 9)
	rb.Actor, rb.Removed = "alice", "1.5"
	past := fleetview.Rollouts([]fleetview.Entry{
		ev(event.RolloutStarted, "1.4", 0), // one of its 4 hosts dies: 3/4 forever
		ev(event.RolloutStarted, "1.5", 5), ev(event.RolloutDone, "1.5", 6),
		rb, ev(event.RolloutStarted, "1.4", 10), ev(event.RolloutDone, "1.4", 11),
	})
	var got []string
	for _, p := range past {
		got = append(got, p.Version+" "+p.Outcome+" "+p.Actor+" "+p.From)
	}
	want := []string{"1.4 superseded  ", "1.5 rolled back by alice  ", "1.4 done alice rollback"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("rollouts: %q, want %q", got, want)
	}
}
