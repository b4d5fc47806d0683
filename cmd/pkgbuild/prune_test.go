package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// TestPruneKeepsWhatTheFleetNeeds: --keep 1 keeps the newest version, the
// rollback target, and, with --redis, the version a live host runs; without
// --redis prune says it could not check.
func TestPruneKeepsWhatTheFleetNeeds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	key := filepath.Join(dir, "signing.asc")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	t.Setenv("APTFLEET_REDIS_URL", "")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	args := []string{"publish", "--repo", repoDir, "--dist", "production", "--key", key}
	for _, v := range []string{"1.0-1", "2.0-1", "3.0-1", "4.0-1"} {
		args = append(args, debs.Write(t, dir, debs.Spec{Name: "hello", Version: v}))
	}
	if _, err := runCLI(t, args...); err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if err := redisstate.New(rdb, redisstate.Options{}).SetHost(ctx, "hello", "production", "i-1", "1.0-1", puller.StateOK); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"prune", "--repo", repoDir, "--keep", "1", "--dry-run", "--key", key}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "could not check which versions live hosts run") {
		t.Errorf("prune without --redis says %q", errOut.String())
	}
	got, err := runCLI(t, "prune", "--repo", repoDir, "--keep", "1", "--redis", "redis://"+srv.Addr, "--key", key)
	if err != nil {
		t.Fatalf("prune: %v\n%s", err, got)
	}
	if !strings.Contains(got, "removed production: hello 2.0-1 amd64\n") || strings.Count(got, "removed ") != 1 {
		t.Errorf("prune removed:\n%s\nwant only hello 2.0-1", got)
	}
	list, _ := runCLI(t, "list", "--repo", repoDir, "--dist", "production", "--key", key)
	if list != "hello 4.0-1 amd64\nhello 3.0-1 amd64\nhello 1.0-1 amd64\n" {
		t.Errorf("production after prune:\n%s", list)
	}
	if n, _ := rdb.DBSize(ctx).Result(); n != 1 {
		t.Errorf("Redis holds %d keys after prune, want the one host record", n)
	}
}
