package main

import (
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
)

var truthRounds = flag.Int("truth.rounds", 6, "rounds of publish, promote and yank per fault in TestTruthfulOutcomes")

// s3Env points the AWS SDK at srv's credentials and nothing else, and
// leaves the commands no Redis and no signing key from the environment.
func s3Env(t *testing.T, srv *s3server.Server) {
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("APTFLEET_SIGNING_KEY_FILE", "")
	t.Setenv("APTFLEET_SIGNING_KEY_PASSPHRASE", "")
	t.Setenv("APTFLEET_REDIS_URL", "")
}

// TestTruthfulOutcomes runs publish, promote and yank through a proxy that
// loses the answer to writes the server applied (the response dropped, 503
// after the write, 500s at random), and counts the commands whose report
// disagrees with what the repository shows afterwards, read without the
// proxy: a command that says it published, promoted or yanked must have
// done so, and one that failed must have changed nothing.
func TestTruthfulOutcomes(t *testing.T) {
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
	s3Env(t, srv)
	proxy := s3server.NewFaultProxy(t, srv)
	dir := t.TempDir()
	key := filepath.Join(dir, "signing.asc")
	if _, err := runCLI(t, "key", "generate", "--out", key); err != nil {
		t.Fatal(err)
	}
	total, disagree := 0, 0
	for i, tc := range []struct {
		fault s3server.Fault
		prob  float64
		match func(r *http.Request) bool
	}{
		{s3server.DropAfter, 0.5, s3server.PutTo("/InRelease")},
		{s3server.Status503After, 1, s3server.PutTo("/InRelease")},
		{s3server.Status500, 0.2, nil},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			prefix := fmt.Sprintf("s3://%s/truth%d", srv.Bucket, i)
			direct := []string{"--repo", prefix, "--endpoint", srv.URL, "--region", srv.Region, "--key", key}
			faulty := []string{"--repo", prefix, "--endpoint", proxy.URL, "--region", srv.Region, "--key", key}
			has := func(dist, v string) bool {
				t.Helper()
				out, err := runCLI(t, append([]string{"list", "--dist", dist}, direct...)...)
				if err != nil {
					t.Fatalf("list %s: %v", dist, err)
				}
				return strings.Contains(out, "hello "+v+" amd64")
			}
			for _, d := range []string{"staging", "production"} {
				if _, err := runCLI(t, append([]string{"publish", "--dist", d, debs.Write(t, dir, debs.Spec{Name: "hello", Version: "0.1-1"})}, direct...)...); err != nil {
					t.Fatal(err)
				}
			}
			injected := proxy.Injected()
			proxy.Set(tc.fault, tc.prob, tc.match)
			n, bad := 0, 0
			check := func(cmd, v, dist string, before bool, out string, err error, did string) {
				t.Helper()
				n++
				after := has(dist, v)
				changed := before != after
				claimed := err == nil && strings.Contains(out, did+" hello "+v+" amd64")
				if claimed != changed {
					bad++
					t.Errorf("%s hello=%s: reported %q (err %v), but %s %s hello %s", cmd, v, strings.TrimSpace(out), err,
						dist, map[bool]string{true: "has", false: "does not have"}[after], v)
				}
			}
			for round := range *truthRounds {
				v := fmt.Sprintf("1.%d-1", round)
				deb := debs.Write(t, dir, debs.Spec{Name: "hello", Version: v})
				before := has("staging", v)
				out, err := runCLI(t, append([]string{"publish", "--dist", "staging", deb}, faulty...)...)
				check("publish", v, "staging", before, out, err, "published")

				before = has("production", v)
				out, err = runCLI(t, append([]string{"promote", "--from", "staging", "--to", "production", "hello=" + v}, faulty...)...)
				check("promote", v, "production", before, out, err, "promoted")

				before = has("staging", v)
				out, err = runCLI(t, append([]string{"yank", "--dist", "staging", "hello=" + v}, faulty...)...)
				check("yank", v, "staging", before, out, err, "yanked")
			}
			proxy.Set(s3server.Pass, 0, nil)
			t.Logf("%s: %d commands, %d reports disagreeing with the repository, %d faults injected", tc.fault, n, bad, proxy.Injected()-injected)
			total += n
			disagree += bad
			if out, err := runCLI(t, append([]string{"verify"}, direct...)...); err != nil {
				t.Errorf("verify after the faults: %v\n%s", err, out)
			}
		})
	}
	t.Logf("in all: %d commands, %d reports disagreeing with the repository", total, disagree)
}
