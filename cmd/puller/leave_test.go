package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/gossip"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// A host that leaves the Serf cluster gracefully has its record removed at
// once by the members that see it leave (real Serf members on loopback, a
// real redis-server); the hosts that stay keep theirs.
func TestLeaverRecordRemoved(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	st := redisstate.New(rdb, redisstate.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(name string, join []string) *gossip.Member {
		cfg := gossip.DefaultConfig()
		cfg.NodeName, cfg.BindAddr, cfg.BindPort, cfg.Join = name, "127.0.0.1", 0, join
		cfg.Timing = gossip.FastTiming()
		cfg.Tags = map[string]string{gossip.TagApps: "hello,api", gossip.TagEnv: "production"}
		m, err := gossip.Start(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			m.Leave(ctx)
		})
		return m
	}
	a := start("i-a", nil)
	b := start("i-b", []string{a.Addr()})
	for _, h := range []string{"i-a", "i-b"} {
		for _, app := range []string{"hello", "api"} {
			must(t, st.RecordHost(ctx, app, "production", h, puller.HostRecord{Version: "1.0-1", State: puller.StateOK}))
		}
	}
	go forgetLeavers(ctx, a.Leaves(), st, slog.New(slog.DiscardHandler))
	for deadline := time.Now().Add(10 * time.Second); a.Alive("hello", "production") != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the members did not see each other")
		}
	}
	leaveCtx, leaveCancel := context.WithTimeout(ctx, 5*time.Second)
	defer leaveCancel()
	if err := b.Leave(leaveCtx); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"hello", "api"} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			hosts, err := st.Hosts(ctx, app, "production")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := hosts["i-b"]; !ok {
				if _, ok := hosts["i-a"]; !ok {
					t.Fatalf("%s: the staying host's record went too", app)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: i-b's record still there 10s after it left", app)
			}
		}
	}
	hist, err := st.History(ctx, "hello", "production", 0)
	if err != nil || len(hist) != 1 || hist[0].Kind != "forgotten" || hist[0].Host != "i-b" {
		t.Errorf("history %+v, %v; want one forgotten entry for i-b", hist, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
