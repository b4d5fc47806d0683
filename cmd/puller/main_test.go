package main

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/fleetview"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "puller.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadConfigFailsAtStart(t *testing.T) {
	const app = "host_id: i-1\napps: [{name: hello, env: staging, repo: /srv/repo}]\n"
	tests := []struct {
		name, config, want string
	}{
		{"unknown key", app + "schedul: '@every 1m'\n", "field schedul not found"},
		{"bad cron spec", app + "schedule: 'every minute'\n", "schedule: \"every minute\""},
		{"fraction zero", app + "fraction: 0\n", "fraction: 0 is outside (0, 1]"},
		{"fraction above one", app + "fraction: 1.01\n", "fraction: 1.01 is outside (0, 1]"},
		{"unreachable redis", app + "redis: {addr: " + closedAddr(t) + "}\n", "unreachable"},
		{"missing file", "", "no such file"},
	}
	for _, tt := range tests {
		for _, sub := range []string{"run", "once", "bootstrap", "status", "plan"} {
			t.Run(tt.name+"/"+sub, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "absent.yaml")
				if tt.config != "" {
					path = writeConfig(t, tt.config)
				}
				var out, errOut bytes.Buffer
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				err := run(ctx, []string{sub, "--config", path}, &out, &errOut)
				if err == nil {
					t.Fatalf("puller %s started with a bad config", sub)
				}
				msg := err.Error()
				if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.want) {
					t.Errorf("error %q: want one line containing %q", msg, tt.want)
				}
				if tt.name != "unreachable redis" && tt.name != "missing file" && !strings.Contains(msg, path) {
					t.Errorf("error %q does not name the file %s", msg, path)
				}
			})
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != version {
		t.Errorf("version printed %q, want %q", out.String(), version)
	}
}

func TestStatusFleetGolden(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	st := redisstate.New(rdb, redisstate.Options{Now: func() time.Time { return clock }})
	ctx := context.Background()
	at := func(d time.Duration) { clock = now.Add(-d) }
	at(5 * time.Minute)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.StartRollout(ctx, "hello", "production", "1.4.0-1", 3))
	at(3 * time.Minute)
	for _, h := range []string{"i-0a1", "i-0b2"} {
		_, err := st.FinishHost(ctx, "hello", "production", "1.4.0-1", true)
		must(err)
		must(st.SetHost(ctx, "hello", "production", h, "1.4.0-1", puller.StateOK))
	}
	at(20 * time.Second)
	must(st.SetHost(ctx, "hello", "production", "i-0c3", "1.3.2-1", puller.StateDeploying))
	at(2 * time.Hour)
	must(st.SetHost(ctx, "hello", "production", "i-0dead", "1.2.0-1", puller.StateOK))
	at(10 * time.Minute)
	must(st.StartRollout(ctx, "hello", "staging", "1.5.0-1", 2))
	_, err := st.FinishHost(ctx, "hello", "staging", "1.5.0-1", false)
	must(err)
	_, err = st.MarkBroken(ctx, "hello", "staging", "1.5.0-1", puller.Broken{Reason: "health check: GET /healthz: 503", Host: "i-1s"})
	must(err)
	at(time.Minute)
	must(st.SetHost(ctx, "hello", "staging", "i-1s", "1.4.0-1", puller.StateOK))
	must(st.SetHost(ctx, "hello", "staging", "i-2s", "1.3.2-1", puller.StateOK))

	clock = now
	sts, err := fleetview.Read(ctx, st, nil, now, fleetview.Options{LiveWithin: 10 * time.Minute})
	must(err)
	var got bytes.Buffer
	fleetview.Text(&got, sts, now)
	golden := filepath.Join("testdata", "status-fleet.golden")
	if *update {
		must(os.WriteFile(golden, got.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	must(err)
	if got.String() != string(want) {
		t.Errorf("status --fleet output differs from %s (rerun with -update after checking):\n%s", golden, got.String())
	}
}
