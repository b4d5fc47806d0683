package userdata_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/userdata"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func keyring(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/keyring.gpg")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// minimal is the smallest valid configuration: what an EC2 fleet without
// AUTH, draining or events needs (a gossip key is required).
func minimal(t *testing.T) userdata.Config {
	c := userdata.DefaultConfig()
	c.App = "hello"
	c.Env = "production"
	c.Repo = "s3://acme-apt/fleet"
	c.Keyring = keyring(t)
	c.Region = "eu-west-1"
	c.RedisAddr = "master.locks.abc123.euw1.cache.amazonaws.com:6379"
	c.SerfKeyParameter = "/aptfleet/hello/production/serf-key"
	return c
}

// full sets every field an EC2 fleet uses.
func full(t *testing.T) userdata.Config {
	c := minimal(t)
	c.Dist = "stable"
	c.RedisTLS = true
	c.RedisAuthParameter = "/aptfleet/hello/production/redis-auth"
	c.SerfKeyParameter = "/aptfleet/hello/production/serf-key"
	c.SerfJoinASG = "hello-production"
	c.SerfJoin = []string{"10.0.1.10:7946", "10.0.2.10:7946"}
	c.SerfBind = "0.0.0.0:7946"
	c.AppPort = 9000
	c.TargetGroupARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/hello-production/0123456789abcdef"
	c.SNSTopicARN = "arn:aws:sns:eu-west-1:123456789012:aptfleet-events"
	c.Fraction = 0.34
	c.Schedule = "*/2 * * * *"
	return c
}

// lab is the configuration of the first-boot system test: an S3-compatible
// server with a private CA and static keys, SSM and EC2 stand-ins.
func lab(t *testing.T) userdata.Config {
	c := minimal(t)
	c.RedisAddr = "127.0.0.1:6379"
	c.S3Endpoint = "s3.test:9443"
	c.CABundle = testCA(t)
	c.SSMEndpoint = "http://127.0.0.1:9100"
	c.EC2Endpoint = "http://127.0.0.1:9100"
	c.AccessKeyID = "AKIAEXAMPLE"
	c.SecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	c.RedisAuthParameter = "/aptfleet/redis-auth"
	return c
}

// haproxy is the end-to-end harness's configuration: the lab's, with the
// host drained through HAProxy's runtime API and events sent to an SNS
// stand-in.
// gated is haproxy with every canary, alarm, window and validate variable set.
func gated(t *testing.T) userdata.Config {
	c := haproxy(t)
	c.KeyringPackage = "aptfleet-archive-keyring"
	c.CanaryPercent = 10
	c.CanaryBake = "20s"
	c.CanaryPromote = "manual"
	c.Alarms = []string{"hello-5xx-high", "hello p99 (latency)"}
	c.Window = "Mon-Fri 08:00-17:00 Europe/Berlin"
	c.Validate = `/usr/lib/hello/validate --url "http://127.0.0.1:8080/" $HOME`
	c.ValidateTimeout = "30s"
	return c
}

func haproxy(t *testing.T) userdata.Config {
	c := lab(t)
	c.HAProxySocket = "tcp://127.0.0.1:9999"
	c.HAProxyBackend = "hello"
	c.SNSEndpoint = "http://127.0.0.1:9100"
	c.SNSTopicARN = "arn:aws:sns:eu-west-1:123456789012:aptfleet-events"
	return c
}

func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aptfleet test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*testing.T) userdata.Config
	}{
		{"minimal", minimal},
		{"full", full},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := userdata.Render(tc.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".sh")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./userdata -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendered %s differs from %s (run go test ./userdata -update and review the diff)", tc.name, golden)
			}
		})
	}
}

// TestShell runs bash -n and shellcheck (every check, no exclusions) on
// every shape of rendered script.
func TestShell(t *testing.T) {
	testenv.NeedTools(t, "bash", "shellcheck")
	for _, tc := range []struct {
		name string
		cfg  func(*testing.T) userdata.Config
	}{
		{"minimal", minimal},
		{"full", full},
		{"lab", lab},
		{"haproxy", haproxy},
		{"keyring package", func(t *testing.T) userdata.Config {
			c := full(t)
			c.KeyringPackage = "aptfleet-archive-keyring"
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script, err := userdata.Render(tc.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "user-data.sh")
			if err := os.WriteFile(path, script, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
				t.Fatalf("bash -n: %v\n%s", err, out)
			}
			if out, err := exec.Command("shellcheck", "--shell=bash", "--severity=style", path).CombinedOutput(); err != nil {
				t.Fatalf("shellcheck: %v\n%s", err, out)
			}
		})
	}
}

// TestNoSecrets: on EC2 the script carries no credentials (the instance
// role is used), the Redis AUTH token is referred to by its SSM parameter
// name and reaches the puller as a password file, never inline.
func TestNoSecrets(t *testing.T) {
	script, err := userdata.Render(full(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"AWS_KEY_ID=''\n",
		"AWS_KEY_SECRET=''\n",
		"REDIS_AUTH_PARAMETER='/aptfleet/hello/production/redis-auth'\n",
		"password_file: /etc/aptfleet/redis-password",
	} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("script lacks %q", want)
		}
	}
	if bytes.Contains(script, []byte("  password:")) {
		t.Error("script writes an inline Redis password")
	}
}

func TestKeyringForms(t *testing.T) {
	binary := keyring(t)
	var armored bytes.Buffer
	w, err := armor.Encode(&armored, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(binary)
	w.Close()

	c := minimal(t)
	fromBinary, err := userdata.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	c.Keyring = armored.Bytes()
	fromArmored, err := userdata.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromBinary, fromArmored) {
		t.Error("an armored keyring renders differently from the same keyring in binary")
	}
}

func TestConfigErrors(t *testing.T) {
	secret, err := openpgp.NewEntity("secret", "", "secret@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var secretRing bytes.Buffer
	if err := secret.SerializePrivate(&secretRing, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*userdata.Config)
		field string
	}{
		{"no app", func(c *userdata.Config) { c.App = "" }, "app: required"},
		{"app not a package name", func(c *userdata.Config) { c.App = "Hello World" }, "app:"},
		{"shell quote in env", func(c *userdata.Config) { c.Env = "prod'; rm -rf /" }, "env:"},
		{"http repo", func(c *userdata.Config) { c.Repo = "https://apt.example.com" }, "repo:"},
		{"bucket with dots", func(c *userdata.Config) { c.Repo = "s3://apt.example.com/fleet" }, "repo:"},
		{"no region", func(c *userdata.Config) { c.Region = "" }, "region: required"},
		{"endpoint with scheme", func(c *userdata.Config) { c.S3Endpoint = "https://s3.test:9000" }, "s3_endpoint:"},
		{"half the keys", func(c *userdata.Config) { c.AccessKeyID = "AKIAEXAMPLE" }, "give both or neither"},
		{"no redis", func(c *userdata.Config) { c.RedisAddr = "" }, "redis_addr: required"},
		{"ssm name with space", func(c *userdata.Config) { c.RedisAuthParameter = "/a b" }, "redis_auth_ssm_parameter:"},
		{"redis user with a quote", func(c *userdata.Config) { c.RedisUsername = "ci'x" }, "redis_username:"},
		{"bad join", func(c *userdata.Config) { c.SerfJoin = []string{"10.0.0.1"} }, "serf_join[0]:"},
		{"port", func(c *userdata.Config) { c.AppPort = 70000 }, "app_port:"},
		{"health url with quote", func(c *userdata.Config) { c.HealthURL = `http://127.0.0.1:8080/"x` }, "health_url:"},
		{"fraction", func(c *userdata.Config) { c.Fraction = 1.5 }, "fraction:"},
		{"schedule", func(c *userdata.Config) { c.Schedule = "every minute" }, "schedule:"},
		{"canary percent", func(c *userdata.Config) { c.CanaryPercent = 150 }, "canary_percent: 150 is outside (0, 100]"},
		{"canary hosts and percent", func(c *userdata.Config) { c.CanaryHosts, c.CanaryPercent = 1, 10 }, "give one, not both"},
		{"negative canary hosts", func(c *userdata.Config) { c.CanaryHosts = -1 }, "canary_hosts: -1 is negative"},
		{"bake without canaries", func(c *userdata.Config) { c.CanaryBake = "10m" }, "set without canary_hosts"},
		{"bad bake", func(c *userdata.Config) { c.CanaryHosts, c.CanaryBake = 1, "-5m" }, "canary_bake:"},
		{"bad promote", func(c *userdata.Config) { c.CanaryHosts, c.CanaryPromote = 1, "later" }, "canary_promote:"},
		{"alarm with a quote", func(c *userdata.Config) { c.Alarms = []string{`a"b`} }, "alarms[0]:"},
		{"empty alarm", func(c *userdata.Config) { c.Alarms = []string{" "} }, "alarms[0]:"},
		{"window with a quote", func(c *userdata.Config) { c.Window = `Mon-Fri 08:00-17:00 "UTC"` }, "window:"},
		{"validate with a quote", func(c *userdata.Config) { c.Validate = `echo 'x'` }, "validate:"},
		{"validate with a line break", func(c *userdata.Config) { c.Validate = "true\nrm -rf /" }, "validate:"},
		{"target group", func(c *userdata.Config) { c.TargetGroupARN = "hello" }, "target_group_arn:"},
		{"sns endpoint without scheme", func(c *userdata.Config) { c.SNSEndpoint = "127.0.0.1:9100" }, "sns_endpoint:"},
		{"haproxy socket relative", func(c *userdata.Config) {
			c.HAProxySocket, c.HAProxyBackend = "haproxy.sock", "hello"
		}, "haproxy_socket:"},
		{"haproxy socket http", func(c *userdata.Config) {
			c.HAProxySocket, c.HAProxyBackend = "http://127.0.0.1:9999", "hello"
		}, "haproxy_socket:"},
		{"haproxy backend with quote", func(c *userdata.Config) {
			c.HAProxySocket, c.HAProxyBackend = "/run/haproxy/admin.sock", `hello"`
		}, "haproxy_backend:"},
		{"haproxy without backend", func(c *userdata.Config) { c.HAProxySocket = "tcp://127.0.0.1:9999" }, "haproxy_backend: required"},
		{"backend without haproxy", func(c *userdata.Config) { c.HAProxyBackend = "hello" }, "haproxy_socket: required"},
		{"two drain strategies", func(c *userdata.Config) {
			c.HAProxySocket, c.HAProxyBackend = "tcp://127.0.0.1:9999", "hello"
			c.TargetGroupARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/hello-production/0123456789abcdef"
		}, "one drain strategy"},
		{"ca not pem", func(c *userdata.Config) { c.CABundle = "hello" }, "ca_bundle:"},
		{"no keyring", func(c *userdata.Config) { c.Keyring = nil }, "keyring: required"},
		{"keyring garbage", func(c *userdata.Config) { c.Keyring = []byte("not a key") }, "keyring:"},
		{"secret keyring", func(c *userdata.Config) { c.Keyring = secretRing.Bytes() }, "secret key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := minimal(t)
			tc.edit(&c)
			out, err := userdata.Render(c)
			if !errors.Is(err, userdata.ErrConfig) {
				t.Fatalf("Render: err = %v, want ErrConfig", err)
			}
			if out != nil {
				t.Error("Render returned a script with an error")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %q", err, tc.field)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestSize(t *testing.T) {
	t.Run("full configuration fits", func(t *testing.T) {
		out, err := userdata.Render(full(t))
		if err != nil {
			t.Fatal(err)
		}
		// An RSA-4096 keyring with a subkey is about 3.8 KB in base64:
		// keep room for it and a CA certificate.
		const headroom = 6 << 10
		if len(out) > userdata.MaxSize-headroom {
			t.Errorf("full script is %d bytes: less than %d bytes of the 16 KB limit are left for larger keyrings", len(out), headroom)
		}
	})
	t.Run("full configuration with a keyring package fits", func(t *testing.T) {
		c := full(t)
		c.KeyringPackage = "aptfleet-archive-keyring"
		out, err := userdata.Render(c)
		if err != nil {
			t.Fatal(err)
		}
		// Still room for an RSA-4096 keyring (3.8 KB) and a CA certificate.
		const headroom = 5 << 10
		if len(out) > userdata.MaxSize-headroom {
			t.Errorf("script with a keyring package is %d bytes: less than %d bytes of the 16 KB limit are left", len(out), headroom)
		}
	})
	t.Run("too large", func(t *testing.T) {
		c := lab(t)
		var bundle strings.Builder
		for bundle.Len() < userdata.MaxSize {
			bundle.WriteString(testCA(t))
		}
		c.CABundle = bundle.String()
		_, err := userdata.Render(c)
		if !errors.Is(err, userdata.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
}

// TestVariables: the renderer sets exactly the variables the template uses,
// so Terraform's templatefile (which refuses missing ones) gets the same set.
func TestVariables(t *testing.T) {
	used, err := userdata.Variables(userdata.Template)
	if err != nil {
		t.Fatal(err)
	}
	vars, err := full(t).Vars()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range used {
		if _, ok := vars[name]; !ok {
			t.Errorf("template uses %q, which Vars does not set", name)
		}
	}
	usedSet := map[string]bool{}
	for _, n := range used {
		usedSet[n] = true
	}
	for name := range vars {
		if !usedSet[name] {
			t.Errorf("Vars sets %q, which the template does not use", name)
		}
	}
}

// TestComponent: the apt source and the puller read the same component.
func TestComponent(t *testing.T) {
	c := minimal(t)
	c.Component = "contrib"
	out, err := userdata.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("\nComponents: contrib\n")) || !bytes.Contains(out, []byte(`component: "contrib"`)) {
		t.Errorf("the source or puller.yaml does not name component contrib:\n%s", out)
	}
	c.Component = "../x"
	if _, err := userdata.Render(c); err == nil || !strings.Contains(err.Error(), "component") {
		t.Errorf("a bad component: %v", err)
	}
}
