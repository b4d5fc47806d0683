package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/gossip"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// TestPromoteWaitRollout runs promote --wait-rollout against a real
// redis-server holding the fleet's state as the puller writes it.
func TestPromoteWaitRollout(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	st := redisstate.New(rdb, redisstate.Options{})

	dir := t.TempDir()
	repoDir, key := filepath.Join(dir, "repo"), filepath.Join(dir, "signing.asc")
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", "")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0-1", "1.1-1", "1.2-1"} {
		if _, err := runCLI(t, "publish", "--repo", repoDir, "--dist", "staging", "--key", key, debs.Write(t, dir, debs.Spec{Name: "hello", Version: v})); err != nil {
			t.Fatal(err)
		}
	}
	promote := func(version string, extra ...string) (string, error) {
		args := append([]string{"promote", "--repo", repoDir, "--from", "staging", "--to", "production", "--key", key,
			"--wait-rollout", "--redis", "redis://" + srv.Addr, "--poll", "50ms"}, extra...)
		return runCLI(t, append(args, "hello="+version)...)
	}
	production := func() string {
		out, _ := runCLI(t, "list", "--repo", repoDir, "--dist", "production", "--key", key)
		return out
	}

	// Every live host healthy on 1.0-1: promoted.
	for _, h := range []string{"i-1", "i-2"} {
		if err := st.SetHost(ctx, "hello", "staging", h, "1.0-1", puller.StateOK); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := promote("1.0-1"); err != nil || !strings.Contains(out, "promoted hello 1.0-1") {
		t.Fatalf("finished rollout: out %q, err %v", out, err)
	}

	// A host still on the old version: waits, then gives up; nothing promoted.
	if err := st.SetHost(ctx, "hello", "staging", "i-1", "1.1-1", puller.StateOK); err != nil {
		t.Fatal(err)
	}
	_, err := promote("1.1-1", "--wait-timeout", "500ms")
	if err == nil || !strings.Contains(err.Error(), "not finished after 500ms") {
		t.Fatalf("unfinished rollout: err %v", err)
	}
	if strings.Contains(production(), "1.1-1") {
		t.Fatalf("promoted a version whose rollout had not finished:\n%s", production())
	}

	// The last host arrives while promote waits: promoted then.
	go func() {
		time.Sleep(300 * time.Millisecond)
		st.SetHost(ctx, "hello", "staging", "i-2", "1.1-1", puller.StateOK)
	}()
	if out, err := promote("1.1-1"); err != nil || !strings.Contains(out, "promoted hello 1.1-1") {
		t.Fatalf("rollout finishing during the wait: out %q, err %v", out, err)
	}

	// A halted rollout: promote fails with the reason and changes nothing.
	if _, err := st.MarkBroken(ctx, "hello", "staging", "1.2-1", puller.Broken{Reason: "health check failed: 503", Host: "i-1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, repoDir)
	_, err = promote("1.2-1")
	if err == nil || !strings.Contains(err.Error(), "halted") || !strings.Contains(err.Error(), "health check failed: 503") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("halted rollout: err %v", err)
	}
	if snapshot(t, repoDir) != before {
		t.Fatal("a promote refused for a halted rollout changed the repository")
	}

	// No Redis given: one-line error.
	t.Setenv("APTFLEET_REDIS_URL", "")
	if _, err := runCLI(t, "promote", "--repo", repoDir, "--from", "staging", "--to", "production", "--key", key, "--wait-rollout", "hello=1.2-1"); err == nil || !strings.Contains(err.Error(), "--redis") {
		t.Fatalf("missing --redis: err %v", err)
	}
}

// TestPromoteAnnounce checks that promote --announce reaches a real Serf
// member of the fleet with a deploy event for the promoted app and dist.
func TestPromoteAnnounce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := gossip.DefaultConfig()
	cfg.NodeName, cfg.BindAddr, cfg.BindPort = "i-announce", "127.0.0.1", 0
	cfg.Timing = gossip.FastTiming()
	cfg.Tags = map[string]string{gossip.TagApps: "hello", gossip.TagEnv: "production"}
	m, err := gossip.Start(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Leave(context.Background()) })

	dir := t.TempDir()
	repoDir, key := filepath.Join(dir, "repo"), filepath.Join(dir, "signing.asc")
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", "")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "publish", "--repo", repoDir, "--dist", "staging", "--key", key, debs.Write(t, dir, debs.Spec{Name: "hello", Version: "2.0-1"})); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "promote", "--repo", repoDir, "--from", "staging", "--to", "production", "--key", key,
		"--announce", m.Addr(), "hello=2.0-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-m.Deploys():
		if got := fmt.Sprintf("%s/%s", d.App, d.Env); got != "hello/production" {
			t.Fatalf("deploy event for %s, want hello/production", got)
		}
	case <-ctx.Done():
		t.Fatal("no deploy event reached the fleet member")
	}
}
