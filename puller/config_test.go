package puller

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseConfigFull(t *testing.T) {
	f, err := os.Open("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := ParseConfig("full.yaml", f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HostID != "i-0123456789abcdef0" || cfg.Fraction != 0.34 || cfg.Jitter != 45*time.Second ||
		cfg.LockPoll != 500*time.Millisecond || cfg.Redis.Prefix != "af:" || !cfg.Redis.TLS ||
		cfg.StateDir != "/srv/aptfleet/state" {
		t.Errorf("top-level fields not decoded: %+v", cfg)
	}
	a := cfg.Apps[0]
	if a.Dist != "production" || a.Keyring != "/etc/apt/keyrings/aptfleet.gpg" || len(a.Units) != 0 ||
		a.Health.Consecutive != 5 || a.Health.Deadline != 60*time.Second || a.Drain.Time != 30*time.Second ||
		a.Drain.ELBv2.Port != 8080 {
		t.Errorf("app defaults or fields wrong: %+v", a)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig("min.yaml", strings.NewReader("apps: [{name: hello, env: staging, repo: 'file:///srv/repo'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if cfg.Fraction != want.Fraction || cfg.Schedule != want.Schedule || cfg.Redis.Addr != want.Redis.Addr ||
		cfg.Serf.Bind != want.Serf.Bind || cfg.LockTTL != want.LockTTL || cfg.Apps[0].Dist != "staging" ||
		cfg.Apps[0].Drain.Strategy != "none" || cfg.StateDir != "/var/lib/aptfleet" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const app = "apps: [{name: hello, env: staging, repo: 's3://bucket/p'}]\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", app + "fractoin: 0.5\n", "field fractoin not found"},
		{"unknown app key", "apps: [{name: hello, env: staging, repo: 's3://bucket/p', helth: {}}]\n", "field helth not found"},
		{"bad cron spec", app + "schedule: '61 * * * *'\n", "schedule:"},
		{"empty schedule", app + "schedule: ''\n", "schedule:"},
		{"fraction zero", app + "fraction: 0\n", "fraction: 0 is outside (0, 1]"},
		{"fraction above one", app + "fraction: 1.5\n", "fraction: 1.5 is outside (0, 1]"},
		{"negative fraction", app + "fraction: -0.1\n", "outside (0, 1]"},
		{"no apps", "fraction: 0.5\n", "apps: at least one app"},
		{"empty file", "", "empty file"},
		{"bad duration", app + "jitter: soon\n", "line 2: cannot unmarshal !!str `soon` into time.Duration"},
		{"bad repo", "apps: [{name: hello, env: staging, repo: 'ftp://x'}]\n", "apps[0].repo: bad repository URL"},
		{"bad app name", "apps: [{name: Hello_World, env: staging, repo: 's3://bucket/p'}]\n", "apps[0].name"},
		{"two envs", "apps: [{name: hello, env: s, repo: 's3://bucket/p'}, {name: world, env: t, repo: 's3://bucket/p'}]\n", "one environment"},
		{"duplicate app", "apps: [{name: hello, env: s, repo: 's3://bucket/p'}, {name: hello, env: s, repo: 's3://bucket/p'}]\n", "listed twice"},
		{"bad drain", "apps: [{name: hello, env: s, repo: 's3://bucket/p', drain: {strategy: magic}}]\n", "apps[0].drain.strategy"},
		{"haproxy without backend", "apps: [{name: hello, env: s, repo: 's3://bucket/p', drain: {strategy: haproxy}}]\n", "backend"},
		{"two passwords", app + "redis: {password: a, password_file: /x}\n", "both set"},
		{"bad log format", app + "log_format: xml\n", "log_format"},
		{"relative state dir", app + "state_dir: var/lib/aptfleet\n", "state_dir: \"var/lib/aptfleet\" is not an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("puller.yaml", strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatalf("no error for %q", tt.yaml)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "puller.yaml: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming puller.yaml and containing %q", msg, tt.want)
			}
		})
	}
}
