package gossip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// loopback hands out 127.0.0.x addresses so each test member has its own IP.
var loopback atomic.Int32

func nextIP() string { return fmt.Sprintf("127.0.0.%d", 10+loopback.Add(1)%240) }

// start runs a real Serf member on a loopback address and a free port.
func start(t testing.TB, name, apps, env string, join []string, key []byte, timing Timing) *Member {
	t.Helper()
	m, err := newMember(name, apps, env, join, key, timing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.shutdown() })
	return m
}

func newMember(name, apps, env string, join []string, key []byte, timing Timing) (*Member, error) {
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = nextIP()
	cfg.BindPort = 0
	cfg.Join = join
	cfg.EncryptKey = key
	cfg.Timing = timing
	cfg.Tags = map[string]string{TagApps: apps, TagEnv: env}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Start(ctx, cfg, quiet)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return m, nil
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAliveCountsTaggedMembers(t *testing.T) {
	fast := FastTiming()
	a := start(t, "i-a", "hello,web", "prod", nil, nil, fast)
	join := []string{a.Addr()}
	b := start(t, "i-b", "hello", "prod", join, nil, fast)
	start(t, "i-other-app", "web", "prod", join, nil, fast)
	start(t, "i-other-env", "hello", "staging", join, nil, fast)

	eventually(t, "a and b see 2 hello/prod members", func() bool {
		return a.Alive("hello", "prod") == 2 && b.Alive("hello", "prod") == 2
	})
	eventually(t, "web/prod = 2 (i-a and i-other-app)", func() bool { return a.Alive("web", "prod") == 2 })
	eventually(t, "hello/staging = 1", func() bool { return a.Alive("hello", "staging") == 1 })

	parent := t // members outlive the subtest that starts them
	t.Run("a member joining raises the count", func(t *testing.T) {
		start(parent, "i-c", "hello", "prod", join, nil, fast)
		eventually(t, "a sees 3 hello/prod members", func() bool { return a.Alive("hello", "prod") == 3 })
	})

	t.Run("a member that dies drops from the count", func(t *testing.T) {
		if err := b.serf.Shutdown(); err != nil { // a crash: no leave message
			t.Fatal(err)
		}
		eventually(t, "a sees b fail", func() bool { return a.Alive("hello", "prod") == 2 })
	})

	t.Run("a member that leaves drops from the count", func(t *testing.T) {
		d := start(parent, "i-d", "hello", "prod", join, nil, fast)
		eventually(t, "a sees d", func() bool { return a.Alive("hello", "prod") == 3 })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a sees d leave", func() bool { return a.Alive("hello", "prod") == 2 })
	})
}

func TestSetVersionGossipsTag(t *testing.T) {
	fast := FastTiming()
	a := start(t, "i-a", "hello", "prod", nil, nil, fast)
	b := start(t, "i-b", "hello", "prod", []string{a.Addr()}, nil, fast)
	if err := b.SetVersion("hello", "1.4.0-1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a sees b's version", func() bool { return a.Versions("hello", "prod")["i-b"] == "1.4.0-1" })
	if v, ok := a.Versions("hello", "prod")["i-a"]; !ok || v != "" {
		t.Fatalf("a's own version = %q (listed %v), want \"\" and listed", v, ok)
	}
	eventually(t, "alive after a tag change = 2", func() bool { return a.Alive("hello", "prod") == 2 })
}

func TestAnnounceDeliversDeploy(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"clear", nil},
		{"encrypted", []byte("0123456789abcdef")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fast := FastTiming()
			members := []*Member{start(t, "i-0", "hello", "prod", nil, tc.key, fast)}
			for i := 1; i < 5; i++ {
				members = append(members, start(t, fmt.Sprintf("i-%d", i), "hello", "prod", []string{members[0].Addr()}, tc.key, fast))
			}
			eventually(t, "5 members", func() bool { return members[4].Alive("hello", "prod") == 5 })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := Announce(ctx, []string{members[2].Addr()}, tc.key, "hello", "prod"); err != nil {
				t.Fatal(err)
			}
			for _, m := range members {
				select {
				case d := <-m.Deploys():
					if d.App != "hello" || d.Env != "prod" {
						t.Fatalf("%s got %+v, want hello/prod", m.serf.LocalMember().Name, d)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s never received the deploy event", m.serf.LocalMember().Name)
				}
			}
			for _, mem := range members[0].serf.Members() { // the announcer is no host
				if strings.HasPrefix(mem.Name, "announce-") && runs(mem.Tags, "hello", "prod") {
					t.Fatalf("the announcer %s counts as a hello/prod host: tags %v", mem.Name, mem.Tags)
				}
			}
		})
	}
}

func TestAnnounceRejected(t *testing.T) {
	key := []byte("0123456789abcdef")
	m := start(t, "i-0", "hello", "prod", nil, key, FastTiming())
	for _, tc := range []struct {
		name     string
		join     []string
		key      []byte
		app, env string
	}{
		{"no encryption key", []string{m.Addr()}, nil, "hello", "prod"},
		{"wrong encryption key", []string{m.Addr()}, []byte("fedcba9876543210"), "hello", "prod"},
		{"bad key size", []string{m.Addr()}, []byte("short"), "hello", "prod"},
		{"no join address", nil, key, "hello", "prod"},
		{"empty env", []string{m.Addr()}, key, "hello", ""},
		{"slash in env", []string{m.Addr()}, key, "hello", "a/b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := Announce(ctx, tc.join, tc.key, tc.app, tc.env); err == nil {
				t.Fatal("Announce succeeded")
			}
		})
	}
	select {
	case d := <-m.Deploys():
		t.Fatalf("a rejected announce was delivered: %+v", d)
	default:
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no node name", Config{BindAddr: "127.0.0.1"}},
		{"bad key size", Config{NodeName: "i-1", BindAddr: "127.0.0.1", EncryptKey: []byte("12345")}},
		{"bad bind address", Config{NodeName: "i-1", BindAddr: "256.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := Start(context.Background(), tc.cfg, quiet); err == nil {
				_ = m.shutdown()
				t.Fatal("Start succeeded")
			}
		})
	}
}

func TestJoinRetriesInBackground(t *testing.T) {
	fast := FastTiming()
	// Reserve an address nobody listens on yet, start a member that joins it,
	// then bring up the member it was told to join.
	ip := nextIP()
	cfg := DefaultConfig()
	cfg.NodeName, cfg.BindAddr, cfg.BindPort, cfg.Timing = "i-seed", ip, 0, fast
	cfg.Tags = map[string]string{TagApps: "hello", TagEnv: "prod"}
	seedPort := freeUDPTCPPort(t, ip)

	jcfg := DefaultConfig()
	jcfg.NodeName, jcfg.BindAddr, jcfg.BindPort, jcfg.Timing = "i-late", nextIP(), 0, fast
	jcfg.Tags = map[string]string{TagApps: "hello", TagEnv: "prod"}
	jcfg.Join = []string{fmt.Sprintf("%s:%d", ip, seedPort)}
	jcfg.RetryJoin = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	late, err := Start(ctx, jcfg, quiet)
	if err != nil {
		t.Fatalf("Start must not fail when the join address is down: %v", err)
	}
	t.Cleanup(func() { _ = late.shutdown() })
	if n := late.Alive("hello", "prod"); n != 1 {
		t.Fatalf("alone: alive = %d, want 1", n)
	}
	cfg.BindPort = seedPort
	seed, err := Start(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seed.shutdown() })
	eventually(t, "the late member joins once the seed is up", func() bool { return late.Alive("hello", "prod") == 2 })
}

func TestParsePayload(t *testing.T) {
	for _, tc := range []struct {
		in       string
		app, env string
		ok       bool
	}{
		{"hello/prod", "hello", "prod", true},
		{"hello", "", "", false},
		{"/prod", "", "", false},
		{"hello/", "", "", false},
		{"a/b/c", "", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			app, env, err := ParsePayload(tc.in)
			if (err == nil) != tc.ok || app != tc.app || env != tc.env {
				t.Fatalf("ParsePayload(%q) = %q, %q, %v", tc.in, app, env, err)
			}
		})
	}
}

// freeUDPTCPPort returns a port free for both TCP and UDP on ip.
func freeUDPTCPPort(t testing.TB, ip string) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("%s:%d", ip, port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}
