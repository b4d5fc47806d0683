package s3_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// pkgbuild builds cmd/pkgbuild once per test binary.
func pkgbuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pkgbuild")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/aptfleet/aptfleet/cmd/pkgbuild").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/pkgbuild: %v\n%s", err, out)
	}
	return bin
}

// cli runs pkgbuild with the S3 settings in the environment, as CI would.
type cli struct {
	t   *testing.T
	bin string
	env []string
}

func (c cli) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	cmd := exec.CommandContext(c.t.Context(), c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("pkgbuild %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// TestCLIRoundTripVersitygw publishes with `pkgbuild` to versitygw (real
// SigV4 checks), promotes, and has real apt-get read the repository over
// anonymous path-style HTTP, checking its signature.
func TestCLIRoundTripVersitygw(t *testing.T) {
	testenv.NeedTools(t, "apt-get", "go")
	testenv.NeedRoot(t)
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{AnonymousRead: true})
	dir := t.TempDir()
	key := repotest.NewKey(t, dir, "correct horse")
	other := repotest.NewKey(t, dir, "")
	v1 := debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.0-1"})
	v2 := debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.1-1"})
	env := []string{
		"AWS_ENDPOINT_URL_S3=" + srv.URL,
		"AWS_ACCESS_KEY_ID=" + srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.SecretKey,
		"AWS_REGION=" + srv.Region,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"APTFLEET_SIGNING_KEY_FILE=" + key.File, // list and verify check signatures with it
		"APTFLEET_SIGNING_KEY_PASSPHRASE=" + key.Pass,
	}
	pb := cli{t: t, bin: pkgbuild(t), env: env}
	repoURL := "s3://" + srv.Bucket + "/apt/hello"

	pb.must("publish", "--repo", repoURL, "--dist", "staging", "--key", key.File, v1, v2)
	pb.must("promote", "--repo", repoURL, "--from", "staging", "--to", "production", "hello=1.0-1")
	if got := pb.must("list", "--repo", repoURL, "--dist", "production"); !strings.Contains(got, "1.0-1") || strings.Contains(got, "1.1-1") {
		t.Errorf("list production after promoting 1.0-1:\n%s", got)
	}
	if got := pb.must("list", "--repo", repoURL, "--dist", "staging"); !strings.Contains(got, "1.1-1") || !strings.Contains(got, "1.0-1") {
		t.Errorf("list staging:\n%s", got)
	}
	pb.must("verify", "--repo", repoURL)

	base := srv.URL + "/" + srv.Bucket + "/apt/hello/"
	for _, tt := range []struct {
		dist, want string
		deb        string
	}{
		{"production", "hello_1.0-1_amd64.deb", v1},
		{"staging", "hello_1.1-1_amd64.deb", v2},
	} {
		t.Run("apt "+tt.dist, func(t *testing.T) {
			a := testenv.NewAptSource(t, "deb [signed-by="+key.Keyring+"] "+base+" "+tt.dist+" main")
			if out, err := a.Run(t.Context(), "--error-on=any", "update"); err != nil {
				t.Fatalf("apt-get update: %v\n%s", err, out)
			}
			if out, err := a.Run(t.Context(), "download", "hello"); err != nil {
				t.Fatalf("apt-get download: %v\n%s", err, out)
			}
			got := a.Downloaded(tt.want)
			if sha(t, got) != sha(t, tt.deb) {
				t.Errorf("apt downloaded %s with other bytes than were published", tt.want)
			}
		})
	}

	t.Run("apt refuses the wrong key", func(t *testing.T) {
		a := testenv.NewAptSource(t, "deb [signed-by="+other.Keyring+"] "+base+" production main")
		out, err := a.Run(t.Context(), "--error-on=any", "update")
		if err == nil {
			t.Fatalf("apt-get update accepted a repository signed by another key:\n%s", out)
		}
		if !strings.Contains(out, "NO_PUBKEY") && !strings.Contains(out, "not signed") {
			t.Errorf("apt-get update failed for another reason than the signature:\n%s", out)
		}
	})

	t.Run("wrong secret key", func(t *testing.T) {
		bad := cli{t: t, bin: pb.bin, env: append(append([]string{}, env...), "AWS_SECRET_ACCESS_KEY=wrong")}
		before := pb.must("list", "--repo", repoURL, "--dist", "staging")
		v3 := debs.Write(t, dir, debs.Spec{Name: "hello", Version: "1.2-1"})
		out, errOut, err := bad.run("publish", "--repo", repoURL, "--dist", "staging", "--key", key.File, v3)
		if err == nil {
			t.Fatalf("publish with a wrong secret succeeded:\n%s", out)
		}
		msg := strings.TrimSpace(errOut)
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "SignatureDoesNotMatch") {
			t.Errorf("want a one-line error naming SignatureDoesNotMatch, got:\n%s", errOut)
		}
		if after := pb.must("list", "--repo", repoURL, "--dist", "staging"); after != before {
			t.Errorf("repository changed by a failed publish:\n%s\nthen\n%s", before, after)
		}
	})
}
