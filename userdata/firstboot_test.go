//go:build system

package userdata_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/instance"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/awsstub"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/pkgbuild"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/s3"
	"github.com/aptfleet/aptfleet/userdata"
)

// TestFirstBoot is the user-data's real proof: a Debian 12 instance with
// systemd as PID 1 (systemd-nspawn, from the cached debootstrapped root)
// runs the rendered script at first boot. It installs apt-transport-s3 from
// Debian's mirror, trusts the test CA, reads the Redis AUTH token from the
// SSM stand-in, installs the puller from a signed repository on versitygw
// (TLS, virtual-host bucket, real SigV4) through apt-transport-s3, and
// `puller bootstrap` installs hello. The repository's keyring package (built by
// `pkgbuild keyring build`) is installed and its file trusted from then on.
// It ends with hello answering /healthz
// and the puller running and recorded in Redis.
func TestFirstBoot(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "redis-server", "go")
	base := testenv.TestRoot(t)
	work := t.TempDir()

	// The packages: hello and the puller, built from this tree.
	helloDeb := buildPackage(t, work, "../examples/hello/package.yaml", "../examples/hello", "bin/hello", "1.2.0-1")
	pullerDeb := buildPackage(t, work, "../packaging/puller/package.yaml", "../cmd/puller", "../../bin/puller", "0.9.0-1")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The repository: signed, on versitygw over TLS with virtual-host buckets.
	s3srv := s3server.Versitygw(t, s3server.VersitygwOptions{Bucket: "fleetrepo", TLS: true, VirtualHost: true})
	var key bytes.Buffer
	if err := repo.GenerateKey(&key, "aptfleet test", "repo@example.invalid", nil); err != nil {
		t.Fatal(err)
	}
	signer, err := repo.ParseSigner(key.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var keyring bytes.Buffer
	if err := signer.WritePublicKey(&keyring, false); err != nil {
		t.Fatal(err)
	}
	// The keyring package, built by `pkgbuild keyring build` as a
	// repository's owner would: first boot installs it and trusts its file.
	keyringDeb := buildKeyringPackage(t, work, keyring.Bytes())
	store := s3.NewFromClient(s3srv.Client(), s3.Config{Bucket: s3srv.Bucket, Prefix: "apt"})
	r := &repo.Repo{Store: store, Signer: signer}
	if _, err := r.Publish(ctx, "production", "main", []string{helloDeb, pullerDeb, keyringDeb}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	ca, err := os.ReadFile(s3srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	_, s3Port, _ := net.SplitHostPort(s3srv.Addr)

	// Redis with AUTH; the token is only in the SSM stand-in.
	const token = "first-boot-redis-token"
	rds := testenv.StartRedis(t, testenv.RedisOptions{Password: token})
	// The SSM stand-in checks signatures with the same static keys.
	serfKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	ssm := awsstub.NewParameterStore(t, s3srv.Region, s3srv.AccessKey, s3srv.SecretKey, map[string]string{
		"/aptfleet/hello/redis-auth": token,
		"/aptfleet/hello/serf-key":   serfKey,
	})

	appPort, serfPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := userdata.DefaultConfig()
	cfg.App = "hello"
	cfg.Env = "production"
	cfg.Repo = "s3://" + s3srv.Bucket + "/apt"
	cfg.Keyring = keyring.Bytes()
	cfg.KeyringPackage = keyringPackage
	cfg.Region = s3srv.Region
	cfg.S3Endpoint = "s3.test:" + s3Port
	cfg.CABundle = string(ca)
	cfg.SSMEndpoint = ssm.URL
	cfg.RedisAddr = rds.Addr
	cfg.RedisTLS = false // the test's redis-server listens without TLS
	cfg.RedisAuthParameter = "/aptfleet/hello/redis-auth"
	cfg.SerfKeyParameter = "/aptfleet/hello/serf-key"
	cfg.SerfBind = fmt.Sprintf("127.0.0.1:%d", serfPort)
	cfg.AppPort = appPort
	// versitygw checks SigV4 against its own keys; on EC2 these stay empty
	// and the instance role is used.
	cfg.AccessKeyID, cfg.SecretAccessKey = s3srv.AccessKey, s3srv.SecretKey
	script, err := userdata.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}

	inst, err := instance.Boot(ctx, base, instance.Options{
		Dir: filepath.Join(work, "instance"),
		// cloud-init runs the user-data once at first boot.
		UserData: script,
		// What the EC2 environment provides: DNS for the bucket's virtual
		// host. hello's port: the instance shares the machine's network, so
		// it gets a free port through its conffile, kept by the install.
		Files: map[string][]byte{
			"/etc/hosts":         fmt.Appendf(nil, "127.0.0.1 localhost\n127.0.0.1 s3.test %s.s3.test\n", s3srv.Bucket),
			"/etc/default/hello": fmt.Appendf(nil, "PORT=%d\n", appPort),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	dump := func() {
		out, _ := inst.Run(context.Background(), "journalctl", "--no-pager", "-o", "short-precise", "-u", instance.UserDataUnit, "-u", "puller.service", "-u", "hello-web.service")
		t.Logf("journal:\n%s", out)
	}

	// multi-user.target waits for the oneshot: "running" means the
	// user-data finished and succeeded, "degraded" that it failed.
	start := time.Now()
	if err := inst.WaitSystemRunning(ctx); err != nil {
		dump()
		t.Fatalf("first boot: %v", err)
	}
	t.Logf("first boot with user-data took %s", time.Since(start).Round(time.Second))

	for _, check := range []struct{ name, cmd string }{
		{"user-data succeeded", "systemctl is-active " + instance.UserDataUnit},
		{"puller running", "systemctl is-active puller.service"},
		{"puller enabled", "systemctl is-enabled puller.service"},
		{"hello installed at the published version", "test \"$(dpkg-query -W -f='${Version}' hello)\" = 1.2.0-1"},
		{"apt-transport-s3 from Debian", "dpkg-query -W apt-transport-s3"},
		{"keyring package installed", "dpkg-query -W " + keyringPackage},
		{"source uses Signed-By with the keyring package's file", "grep -qx 'Signed-By: /usr/share/keyrings/" + keyringPackage + ".gpg' /etc/apt/sources.list.d/aptfleet.sources"},
		{"apt reads the repository with the keyring package's file", "apt-get update -o Dir::Etc::sourceparts=- -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/aptfleet.sources"},
		{"the puller upgrades the keyring package", "grep -q 'name: " + keyringPackage + ",.*no_units: true' /etc/aptfleet/puller.yaml"},
		{"redis token from SSM", "test \"$(cat /etc/aptfleet/redis-password)\" = " + token},
		{"serf key from SSM", "test \"$(cat /etc/aptfleet/serf.key)\" = " + serfKey},
		{"apt read the repository through the s3 method", "ls /var/lib/apt/lists/ | grep -q '^fleetrepo_apt_dists_production_InRelease$'"},
		{"secrets not world-readable", "test \"$(stat -c %a /etc/aptfleet/redis-password /etc/apt/s3auth.conf /etc/aptfleet/puller.env | sort -u)\" = 600"},
		{"every step logged with a time", "grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z aptfleet-user-data: step: start the puller$' /var/log/aptfleet-user-data.log"},
		{"finished", "tail -n1 /var/log/aptfleet-user-data.log | grep -q 'aptfleet-user-data: done$'"},
	} {
		if out, err := inst.Shell(ctx, check.cmd); err != nil {
			dump()
			t.Fatalf("%s: %v\n%s", check.name, err, out)
		}
	}

	// hello answers /healthz on the machine's network.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", appPort))
	if err != nil {
		dump()
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("healthz: %s", resp.Status)
	}

	// The puller reached Redis with the token from SSM and recorded the host.
	rc := redis.NewClient(&redis.Options{Addr: rds.Addr, Password: token})
	defer rc.Close()
	hosts, err := rc.HGetAll(ctx, "aptfleet:hello:production:hosts").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 {
		dump()
		t.Errorf("Redis hosts of hello/production: %v, want this instance", hosts)
	}
	for host, rec := range hosts {
		if !strings.Contains(rec, "1.2.0-1") {
			t.Errorf("host %s recorded %s, want version 1.2.0-1", host, rec)
		}
	}
	if calls, errs := ssm.Calls(), ssm.Rejections(); len(calls) != 2 || len(errs) != 0 {
		t.Errorf("SSM stand-in: served %q, rejected %q", calls, errs)
	}
}

// keyringPackage is the keyring package TestFirstBoot publishes.
const keyringPackage = "aptfleet-archive-keyring"

// buildKeyringPackage builds the keyring package holding the public keyring
// with this tree's `pkgbuild keyring build`.
func buildKeyringPackage(t *testing.T, work string, public []byte) string {
	t.Helper()
	bin := filepath.Join(work, "pkgbuild")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/pkgbuild")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pkgbuild: %v\n%s", err, out)
	}
	pub := filepath.Join(work, "repo.gpg")
	if err := os.WriteFile(pub, public, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "keyring", "build", "--public", pub, "--name", keyringPackage, "--version", "1",
		"--maintainer", "aptfleet test <repo@example.invalid>", "--out", work).CombinedOutput()
	if err != nil {
		t.Fatalf("pkgbuild keyring build: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// buildPackage compiles pkgDir's main package to binPath (relative to the
// spec, inside a copy of the spec's directory) and builds the .deb.
func buildPackage(t *testing.T, work, specPath, pkgDir, binPath, version string) string {
	t.Helper()
	specDir := filepath.Dir(specPath)
	name := filepath.Base(filepath.Dir(specPath))
	dst := filepath.Join(work, "src", name, "spec")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", specDir+"/.", dst+"/").CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", specDir, err, out)
	}
	bin := filepath.Join(dst, binPath)
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./"+filepath.ToSlash(filepath.Clean(filepath.Join("userdata", pkgDir))))
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkgDir, err, out)
	}
	f, err := os.Open(filepath.Join(dst, filepath.Base(specPath)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec, err := pkgbuild.Parse(f, f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.SetVersion(version); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(work, name+"_"+version+".deb")
	out, err := os.Create(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := pkgbuild.Build(spec, out); err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return deb
}
