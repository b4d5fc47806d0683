package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/redisstate"
	"github.com/aptfleet/aptfleet/puller/statedir"
)

// writeCommands are the Redis commands that change data; MONITOR must see
// none of them while plan runs.
var writeCommands = map[string]bool{
	"set": true, "del": true, "unlink": true, "expire": true, "pexpire": true, "hset": true, "hsetnx": true,
	"hdel": true, "hincrby": true, "incr": true, "zadd": true, "zrem": true, "zpopmin": true,
	"zremrangebyscore": true, "xadd": true, "eval": true, "evalsha": true, "publish": true, "flushall": true,
}

// TestPlanWritesNothing runs `puller plan` (text and --json) against a real
// redis-server watched with MONITOR and a real signed repository, for an app
// this machine has installed (base-files) with two newer versions published,
// the newest marked broken and the app/env paused: plan says running,
// newest, target, the skipped version with its mark, the pause and what the
// next cycle would do, while Redis sees no write command and the state
// directory is unchanged. A corrupt state file is a one-line error naming it.
func TestPlanWritesNothing(t *testing.T) {
	testenv.NeedTools(t, "dpkg-query")
	const app = "base-files"
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", app).Output()
	if err != nil || len(out) == 0 {
		testenv.Skip(t, "dpkg-query cannot tell the version of "+app)
	}
	installed := string(out)
	good, bad := installed+"+plan1", installed+"+plan2"
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	work := t.TempDir()
	repoDir, keyring := signedRepo(t, work, "testing", app, installed, good, bad)
	stateDir := t.TempDir()
	dates, err := statedir.OpenDates(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dates.Advance(app+"/testing", time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	indexFile := filepath.Join(stateDir, "index.json")
	cfg := writeConfig(t, `host_id: i-plan
state_dir: "`+stateDir+`"
redis: {addr: "`+srv.Addr+`"}
apps:
  - name: `+app+`
    env: testing
    repo: "`+repoDir+`"
    keyring: "`+keyring+`"
`)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	st := redisstate.New(rdb, redisstate.Options{})
	if _, err := st.MarkBroken(ctx, app, "testing", bad, puller.Broken{Reason: "health check: 503", Host: "i-9"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SetPause(ctx, app, "testing", redisstate.Pause{Actor: "ops@bastion", Reason: "incident 42"},
		event.New(event.Paused, app, "testing", "", "", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordHost(ctx, app, "testing", "i-plan", puller.HostRecord{Version: installed, Target: good, State: puller.StateHeld}); err != nil {
		t.Fatal(err)
	}
	stateBefore := snapshot(t, stateDir)

	host, port, _ := strings.Cut(srv.Addr, ":")
	var monOut testenv.Buffer
	mon := exec.Command("redis-cli", "-h", host, "-p", port, "monitor")
	mon.Stdout = &monOut
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	defer mon.Process.Kill()
	waitMonitor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(monOut.String(), what); {
			if time.Now().After(deadline) {
				t.Fatalf("MONITOR did not show %q: %q", what, monOut.String())
			}
			rdb.Get(ctx, what) // a marker read, seen once MONITOR is in force
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMonitor("marker-before-plan")
	var text, js, errOut bytes.Buffer
	if err := run(ctx, []string{"plan", "--config", cfg}, &text, &errOut); err != nil {
		t.Fatalf("plan: %v\n%s", err, errOut.String())
	}
	if err := run(ctx, []string{"plan", "--config", cfg, "--json"}, &js, &errOut); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, errOut.String())
	}
	waitMonitor("marker-after-plan")
	mon.Process.Kill()
	mon.Wait()
	_, seen, _ := strings.Cut(monOut.String(), "marker-before-plan")
	seen, _, _ = strings.Cut(seen, "marker-after-plan")
	lines := strings.Split(seen, "\n")
	reads := 0
	for _, line := range lines {
		// 1700000000.123456 [0 127.0.0.1:41234] "hgetall" "aptfleet:..."
		_, rest, ok := strings.Cut(line, "] \"")
		if !ok {
			continue
		}
		cmd, _, _ := strings.Cut(rest, "\"")
		cmd = strings.ToLower(cmd)
		if writeCommands[cmd] {
			t.Errorf("plan sent a write command: %s", line)
		}
		if cmd == "hgetall" || cmd == "hget" || cmd == "get" {
			reads++
		}
	}
	if reads == 0 {
		t.Fatalf("MONITOR saw no reads: it did not watch plan: %q", lines)
	}
	if after := snapshot(t, stateDir); after != stateBefore {
		t.Errorf("state directory changed:\nbefore %s\nafter  %s", stateBefore, after)
	}

	t.Logf("plan:\n%s", text.String())
	for _, want := range []string{
		"running  " + installed, "newest   " + bad, "target   " + good,
		"skipped  " + bad + ": marked broken: health check: 503, host i-9",
		"held     paused: by ops@bastion: incident 42",
		"next     hold: would upgrade to " + good + ", but paused",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("plan output lacks %q:\n%s", want, text.String())
		}
	}
	var doc struct {
		Host string           `json:"host"`
		Apps []puller.AppPlan `json:"apps"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, js.String())
	}
	if len(doc.Apps) != 1 || doc.Host != "i-plan" {
		t.Fatalf("plan --json: %+v", doc)
	}
	p := doc.Apps[0]
	if p.Running != installed || p.Newest != bad || p.Target != good || p.Action != puller.ActionUpgrade ||
		len(p.Skipped) != 1 || p.Skipped[0].Broken == nil || len(p.Held) != 1 || p.Held[0].Kind != puller.HoldPause {
		t.Errorf("plan --json app: %+v", p)
	}

	// A corrupt state file: one line naming it, a non-zero exit.
	if err := os.WriteFile(indexFile, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"plan", "--config", cfg}, &text, &errOut)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), indexFile) {
		t.Errorf("plan with a corrupt state file: %v; want one line naming %s", err, indexFile)
	}
}

// snapshot is every file of dir with its size, mode, time and contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.Mode().String() + " " + fi.ModTime().Format(time.RFC3339Nano))
		if !fi.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
