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
			if p.Redis.TLS || p.Redis.PasswordFile != "" || p.Serf.EncryptKeyFile != "" || p.SNSTopicARN != "" {
				t.Errorf("unexpected options: %+v", p)
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
			if !p.Redis.TLS || p.Redis.PasswordFile != "/etc/aptfleet/redis-password" || p.Redis.Password != "" {
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := userdata.Render(tc.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			script := string(out)
			start := strings.Index(script, "\nJOIN=()\n")
			endMark := "} | put \"$CONFIG\" 0644\n"
			end := strings.Index(script, endMark)
			if start < 0 || end < start {
				t.Fatal("cannot find the puller configuration block")
			}
			prog := shellPrologue(t, script) + "step() { :; }\nlog() { :; }\n" +
				script[start:end] + "}\n"
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", prog)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			yaml, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.Bytes())
			}
			cfg, err := puller.ParseConfig("puller.yaml", bytes.NewReader(yaml))
			if err != nil {
				t.Fatalf("the puller rejects the written configuration: %v\n%s", err, yaml)
			}
			if len(cfg.Apps) != 1 {
				t.Fatalf("apps = %+v", cfg.Apps)
			}
			tc.check(t, cfg)
		})
	}
}
