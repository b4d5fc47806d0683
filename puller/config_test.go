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
	c := a.Canary
	if c.Percent == nil || *c.Percent != 10 || c.Hosts != 0 || c.Bake != 10*time.Minute || c.Promote != PromoteManual ||
		c.Analysis != (Analysis{MaxErrorRate: 0.01, MaxErrorRateRatio: 2, MaxLatencyRatio: 1.5, MinRequests: 500}) ||
		len(a.Alarms) != 2 || a.Alarms[1] != "hello-p99-latency" || a.Window != "Mon-Fri 08:00-17:00 Europe/Berlin" ||
		a.Validate != "/usr/lib/hello/validate" || a.ValidateTimeout != 30*time.Second ||
		cfg.CloudWatch != (CloudWatch{Region: "eu-west-1", Poll: 15 * time.Second}) {
		t.Errorf("canary, alarms, window or validate wrong: %+v %+v %+v", a, c, cfg.CloudWatch)
	}
	if got := c.Count(25); got != 3 {
		t.Errorf("10%% of 25 hosts = %d canaries, want 3 (rounded up)", got)
	}
}

func TestCanaryCount(t *testing.T) {
	pct := func(p float64) *float64 { return &p }
	for _, tt := range []struct {
		c           Canary
		alive, want int
	}{
		{Canary{}, 10, 0},
		{Canary{Hosts: 1}, 10, 1},
		{Canary{Hosts: 3}, 2, 2},
		{Canary{Percent: pct(10)}, 10, 1},
		{Canary{Percent: pct(10)}, 11, 2},
		{Canary{Percent: pct(10)}, 3, 1},
		{Canary{Percent: pct(100)}, 7, 7},
		{Canary{Percent: pct(1)}, 1000, 10},
	} {
		if got := tt.c.Count(tt.alive); got != tt.want {
			t.Errorf("%+v of %d hosts: %d canaries, want %d", tt.c, tt.alive, got, tt.want)
		}
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig("min.yaml", strings.NewReader("apps: [{name: hello, env: staging, repo: 'file:///srv/repo'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if a := cfg.Apps[0]; a.Canary.Enabled() || a.Alarms != nil || a.Window != "" || a.Validate != "" ||
		a.ValidateTimeout != 2*time.Minute || cfg.CloudWatch.Poll != 30*time.Second {
		t.Errorf("gates not off by default: %+v", a)
	}
	if cfg.Fraction != want.Fraction || cfg.Schedule != want.Schedule || cfg.Redis.Addr != want.Redis.Addr ||
		cfg.Serf.Bind != want.Serf.Bind || cfg.LockTTL != want.LockTTL || cfg.Apps[0].Dist != "staging" ||
		cfg.Apps[0].Drain.Strategy != "none" || cfg.StateDir != "/var/lib/aptfleet" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const app = "apps: [{name: hello, env: staging, repo: 's3://bucket/p'}]\n"
	gate := func(yaml string) string {
		return "apps:\n  - name: hello\n    env: staging\n    repo: 's3://bucket/p'\n    " + yaml + "\n"
	}
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
		{"canary percent zero", gate("canary: {percent: 0}"), "apps[0].canary.percent: 0 is outside (0, 100]"},
		{"canary percent above 100", gate("canary: {percent: 150}"), "apps[0].canary.percent: 150 is outside (0, 100]"},
		{"canary hosts and percent", gate("canary: {hosts: 1, percent: 5}"), "apps[0].canary: hosts and percent are both set"},
		{"negative canary hosts", gate("canary: {hosts: -1}"), "apps[0].canary.hosts: -1 is negative"},
		{"negative bake", gate("canary: {hosts: 1, bake: -5m}"), "apps[0].canary.bake: -5m0s is negative"},
		{"bad promote", gate("canary: {hosts: 1, promote: later}"), `apps[0].canary.promote: "later" is not auto or manual`},
		{"bake without canaries", gate("canary: {bake: 5m}"), "apps[0].canary: bake or promote set without hosts or percent"},
		{"negative threshold", gate("canary: {hosts: 1, analysis: {max_latency_ratio: -1}}"), "apps[0].canary.analysis.max_latency_ratio: -1 is negative"},
		{"error rate above 1", gate("canary: {hosts: 1, analysis: {max_error_rate: 2}}"), "apps[0].canary.analysis.max_error_rate: 2 is above 1"},
		{"unknown analysis key", gate("canary: {hosts: 1, analysis: {max_errors: 1}}"), "field max_errors not found"},
		{"empty alarm name", gate("alarms: [hello-5xx, '']"), "apps[0].alarms[1]: empty alarm name"},
		{"unknown time zone", gate("window: 'Mon-Fri 08:00-17:00 Europe/Atlantis'"), `apps[0].window: "Mon-Fri 08:00-17:00 Europe/Atlantis": unknown time zone "Europe/Atlantis"`},
		{"window never opens", gate("window: 'Mon-Fri 09:00-09:00'"), "apps[0].window: \"Mon-Fri 09:00-09:00\": the window never opens"},
		{"negative validate timeout", gate("validate: /bin/true\n    validate_timeout: -1s"), "apps[0].validate_timeout: -1s is negative"},
		{"alarm poll too short", app + "cloudwatch: {poll: 100ms}\n", "cloudwatch.poll: 100ms is shorter than 1s"},
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
