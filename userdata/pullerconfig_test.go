package userdata_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/userdata"
)

// TestPullerConfig runs the part of the script that writes
// /etc/aptfleet/puller.yaml and parses the result with the puller's own
// parser (unknown keys rejected), for every shape of configuration.
func TestPullerConfig(t *testing.T) {
	testenv.NeedTools(t, "bash")
	for _, tc := range []struct {
		name  string
		cfg   func(*testing.T) userdata.Config
		check func(*testing.T, puller.Config)
	}{
		{"minimal", minimal, func(t *testing.T, p puller.Config) {
			if p.Redis.PasswordFile != "" || p.Redis.Username != "" || p.SNSTopicARN != "" {
				t.Errorf("unexpected options: %+v", p)
			}
			if !p.Redis.TLS || p.Serf.EncryptKeyFile != "/etc/aptfleet/serf.key" {
				t.Errorf("redis.tls %v, serf.encrypt_key_file %q: want TLS and a gossip key by default", p.Redis.TLS, p.Serf.EncryptKeyFile)
			}
			if p.Apps[0].Drain.Strategy != "none" {
				t.Errorf("drain = %q, want none", p.Apps[0].Drain.Strategy)
			}
			if p.Serf.Bind != "0.0.0.0:7946" {
				t.Errorf("serf.bind = %q", p.Serf.Bind)
			}
		}},
		{"full", func(t *testing.T) userdata.Config {
			c := full(t)
			c.SerfJoinASG = "" // needs the EC2 API; see TestASGPeers
			c.RedisUsername = "aptfleet-instance"
			return c
		}, func(t *testing.T, p puller.Config) {
			a := p.Apps[0]
			if a.Name != "hello" || a.Env != "production" || a.Dist != "stable" || a.Repo != "s3://acme-apt/fleet" {
				t.Errorf("app = %+v", a)
			}
			if a.Keyring != "/etc/apt/keyrings/aptfleet.gpg" || a.SourcesList != "/etc/apt/sources.list.d/aptfleet.sources" {
				t.Errorf("keyring %q, sources %q", a.Keyring, a.SourcesList)
			}
			if a.Health.URL != "http://127.0.0.1:9000/healthz" {
				t.Errorf("health.url = %q", a.Health.URL)
			}
			if a.Drain.Strategy != "elbv2" || a.Drain.ELBv2.Port != 9000 || a.Drain.ELBv2.Region != "eu-west-1" ||
				!strings.HasSuffix(a.Drain.ELBv2.TargetGroupARN, "targetgroup/hello-production/0123456789abcdef") {
				t.Errorf("drain = %+v", a.Drain)
			}
			if p.Fraction != 0.34 || p.Schedule != "*/2 * * * *" {
				t.Errorf("fraction %v, schedule %q", p.Fraction, p.Schedule)
			}
			if !p.Redis.TLS || p.Redis.PasswordFile != "/etc/aptfleet/redis-password" || p.Redis.Password != "" || p.Redis.Username != "aptfleet-instance" {
				t.Errorf("redis = %+v", p.Redis)
			}
			if p.Serf.EncryptKeyFile != "/etc/aptfleet/serf.key" || strings.Join(p.Serf.Join, ",") != "10.0.1.10:7946,10.0.2.10:7946" {
				t.Errorf("serf = %+v", p.Serf)
			}
			if p.SNSTopicARN != "arn:aws:sns:eu-west-1:123456789012:aptfleet-events" {
				t.Errorf("sns_topic_arn = %q", p.SNSTopicARN)
			}
			if p.LockTTL != 30*time.Second {
				t.Errorf("defaults not applied: lock_ttl %s", p.LockTTL)
			}
		}},
		{"gated", gated, func(t *testing.T, p puller.Config) {
			a := p.Apps[0]
			if c := a.Canary; c.Percent == nil || *c.Percent != 10 || c.Hosts != 0 || c.Bake != 20*time.Second || c.Promote != "manual" {
				t.Errorf("canary = %+v", c)
			}
			if strings.Join(a.Alarms, ",") != "hello-5xx-high,hello p99 (latency)" || a.Window != "Mon-Fri 08:00-17:00 Europe/Berlin" {
				t.Errorf("alarms %q, window %q", a.Alarms, a.Window)
			}
			if a.Validate != `/usr/lib/hello/validate --url "http://127.0.0.1:8080/" $HOME` || a.ValidateTimeout != 30*time.Second {
				t.Errorf("validate %q (%s): want the command verbatim, nothing expanded", a.Validate, a.ValidateTimeout)
			}
			// The keyring package: the app and apt trust its file, and the
			// puller upgrades it like an app that restarts nothing.
			const kr = "/usr/share/keyrings/aptfleet-archive-keyring.gpg"
			if a.Keyring != kr {
				t.Errorf("app keyring %q, want %q", a.Keyring, kr)
			}
			k := p.Apps[1]
			if k.Name != "aptfleet-archive-keyring" || !k.NoUnits || k.Keyring != kr || k.Env != a.Env || k.Dist != a.Dist ||
				k.Repo != a.Repo || k.SourcesList != a.SourcesList || k.Health.URL != "" || k.Drain.Strategy != "none" {
				t.Errorf("keyring app = %+v", k)
			}
		}},
		{"component", func(t *testing.T) userdata.Config {
			c := minimal(t)
			c.Component = "contrib"
			return c
		}, func(t *testing.T, p puller.Config) {
			if a := p.Apps[0]; a.Component != "contrib" {
				t.Errorf("component %q, want contrib (the apt source's)", a.Component)
			}
		}},
		{"default component", minimal, func(t *testing.T, p puller.Config) {
			if a := p.Apps[0]; a.Component != "main" {
				t.Errorf("component %q, want main", a.Component)
			}
		}},
		{"no gates", haproxy, func(t *testing.T, p puller.Config) {
			if a := p.Apps[0]; a.Canary.Enabled() || len(a.Alarms) != 0 || a.Window != "" || a.Validate != "" {
				t.Errorf("gates written though none was set: %+v", a)
			}
		}},
		{"haproxy", haproxy, func(t *testing.T, p puller.Config) {
			d := p.Apps[0].Drain
			if d.Strategy != "haproxy" || d.HAProxy.Socket != "tcp://127.0.0.1:9999" || d.HAProxy.Backend != "hello" {
				t.Errorf("drain = %+v", d)
			}
			if d.HAProxy.Server != "" {
				t.Errorf("drain.haproxy.server = %q, want the host id (empty)", d.HAProxy.Server)
			}
			if d.ELBv2.TargetGroupARN != "" {
				t.Errorf("drain.elbv2 = %+v", d.ELBv2)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := runWrite(t, tc.cfg(t), "\nJOIN=()\n", "} | put \"$CONFIG\" 0644\n")
			cfg, err := puller.ParseConfig("puller.yaml", bytes.NewReader(yaml))
			if err != nil {
				t.Fatalf("the puller rejects the written configuration: %v\n%s", err, yaml)
			}
			// gated names a keyring package: the second app.
			if want := map[bool]int{false: 1, true: 2}[tc.name == "gated"]; len(cfg.Apps) != want {
				t.Fatalf("apps = %+v, want %d", cfg.Apps, want)
			}
			tc.check(t, cfg)
		})
	}
}

// TestPullerEnv runs the part of the script that writes
// /etc/aptfleet/puller.env and checks its lines: endpoints only when given,
// and with static keys (not on EC2) the instance metadata service disabled.
func TestPullerEnv(t *testing.T) {
	testenv.NeedTools(t, "bash")
	for _, tc := range []struct {
		name string
		cfg  func(*testing.T) userdata.Config
		want []string
	}{
		{"minimal", minimal, []string{"AWS_REGION=eu-west-1"}},
		{"lab", lab, []string{
			"AWS_REGION=eu-west-1",
			"AWS_ENDPOINT_URL_S3=https://s3.test:9443",
			"AWS_ENDPOINT_URL_SSM=http://127.0.0.1:9100",
			"AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
			"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"AWS_EC2_METADATA_DISABLED=true",
		}},
		{"haproxy", haproxy, []string{
			"AWS_REGION=eu-west-1",
			"AWS_ENDPOINT_URL_S3=https://s3.test:9443",
			"AWS_ENDPOINT_URL_SSM=http://127.0.0.1:9100",
			"AWS_ENDPOINT_URL_SNS=http://127.0.0.1:9100",
			"AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
			"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"AWS_EC2_METADATA_DISABLED=true",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := runWrite(t, tc.cfg(t), "\nstep \"write the puller environment\"\n", "} | put \"$ENV_FILE\" 0600\n")
			if got, want := strings.TrimSuffix(string(env), "\n"), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("puller.env:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// runWrite renders c and runs the part of the script from startMark to the
// "} | put FILE" line endMark, after the variables, with step and log
// stubbed: what the script would write to FILE comes out on stdout.
func runWrite(t *testing.T, c userdata.Config, startMark, endMark string) []byte {
	t.Helper()
	out, err := userdata.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	script := string(out)
	start := strings.Index(script, startMark)
	end := strings.Index(script, endMark)
	if start < 0 || end < start {
		t.Fatalf("cannot find the script part from %q to %q", startMark, endMark)
	}
	prog := shellPrologue(t, script) + "step() { :; }\nlog() { :; }\n" + script[start:end] + "}\n"
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", prog)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	written, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.Bytes())
	}
	return written
}
