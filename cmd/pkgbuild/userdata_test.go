package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/userdata"
)

func TestUserdataCommand(t *testing.T) {
	keyring := "../../userdata/testdata/keyring.gpg"
	base := []string{"userdata", "--repo", "s3://acme-apt/fleet", "--dist", "production", "--app", "hello",
		"--keyring", keyring, "--region", "eu-west-1", "--redis-addr", "redis.internal:6379",
		"--serf-key-ssm-parameter", "/aptfleet/serf-key"}

	t.Run("prints what Render renders", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		args := append(append([]string(nil), base...), "--redis-tls", "--serf-join", "10.0.0.5:7946", "--port", "9000",
			"--haproxy-socket", "tcp://10.0.0.2:9999", "--haproxy-backend", "hello", "--sns-endpoint", "https://sns.internal")
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
		key, err := os.ReadFile(keyring)
		if err != nil {
			t.Fatal(err)
		}
		c := userdata.DefaultConfig()
		c.Repo, c.Dist, c.Env, c.App, c.Keyring, c.Region = "s3://acme-apt/fleet", "production", "production", "hello", key, "eu-west-1"
		c.RedisAddr, c.RedisTLS, c.SerfJoin, c.AppPort = "redis.internal:6379", true, []string{"10.0.0.5:7946"}, 9000
		c.SerfKeyParameter = "/aptfleet/serf-key"
		c.HAProxySocket, c.HAProxyBackend, c.SNSEndpoint = "tcp://10.0.0.2:9999", "hello", "https://sns.internal"
		want, err := userdata.Render(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stdout.Bytes(), want) {
			t.Error("pkgbuild userdata output differs from userdata.Render for the same configuration")
		}
	})

	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		env   map[string]string
		strip string // flag to remove from base
	}{
		{name: "no keyring", strip: "--keyring", want: "--keyring: required"},
		{name: "missing keyring file", args: []string{"--keyring", "/nonexistent/keyring.gpg"}, want: "--keyring: open /nonexistent/keyring.gpg"},
		{name: "bad repo", args: []string{"--repo", "https://apt.example.com"}, want: "repo:"},
		{name: "no redis", strip: "--redis-addr", want: "redis_addr: required"},
		{name: "static credentials without env", args: []string{"--static-credentials"}, want: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set",
			env: map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}},
		{name: "haproxy socket without backend", args: []string{"--haproxy-socket", "tcp://10.0.0.2:9999"}, want: "haproxy_backend: required with haproxy_socket"},
		{name: "stray argument", args: []string{"extra"}, want: "unknown command"},
		{name: "no gossip key", strip: "--serf-key-ssm-parameter", want: "no gossip key: give serf_key_ssm_parameter (--serf-key-ssm-parameter) or serf_key (--serf-key-file), or insecure_gossip (--insecure-gossip): without a key any host"},
		{name: "missing serf key file", args: []string{"--serf-key-ssm-parameter=", "--serf-key-file", "/nonexistent/serf.key"}, want: "--serf-key-file: open /nonexistent/serf.key"},
		{name: "two gossip keys", args: []string{"--serf-key-file", "../../userdata/testdata/keyring.gpg"}, want: "give one gossip key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var args []string
			for i := 0; i < len(base); i++ {
				if base[i] == tc.strip {
					i++
					continue
				}
				args = append(args, base[i])
			}
			args = append(args, tc.args...)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %d bytes despite the error", stdout.Len())
			}
		})
	}
}
