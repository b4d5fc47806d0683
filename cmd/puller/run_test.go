package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/redisstate"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// signedRepo publishes a .deb of app at each version into dist of a signed
// repository in a directory under work, and returns the directory and the
// keyring that verifies it.
func signedRepo(t *testing.T, work, dist, app string, versions ...string) (repoDir, keyring string) {
	t.Helper()
	var key bytes.Buffer
	if err := repo.GenerateKey(&key, "puller test", "tests@aptfleet.invalid", nil); err != nil {
		t.Fatal(err)
	}
	signer, err := repo.ParseSigner(key.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keyring = filepath.Join(work, "keyring.gpg")
	f, err := os.Create(keyring)
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.Keyring().Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	repoDir = filepath.Join(work, "repo")
	store, err := dir.Open(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	r := &repo.Repo{Store: store, Signer: signer, Config: repo.DefaultConfig()}
	for _, v := range versions {
		debPath := filepath.Join(work, app+"_"+v+".deb")
		if err := debs.WriteFile(debPath, debs.Spec{Name: app, Version: v}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Publish(context.Background(), dist, "main", []string{debPath}); err != nil {
			t.Fatal(err)
		}
	}
	return repoDir, keyring
}

// TestRunServesAndRecords runs `puller run` with the real wiring (repo
// reader on a signed local repository, Redis, a Serf member on loopback,
// dpkg-query) for an app that is already at its newest version: a package
// this machine has installed, published at its installed version. The agent
// records the host in Redis, serves its metrics and stops cleanly.
func TestRunServesAndRecords(t *testing.T) {
	testenv.NeedTools(t, "dpkg-query")
	const app = "base-files"
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", app).Output()
	if err != nil || len(out) == 0 {
		testenv.Skip(t, "dpkg-query cannot tell the version of "+app)
	}
	installed := string(out)
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	work := t.TempDir()

	repoDir, keyring := signedRepo(t, work, "testing", app, installed)

	metrics := freeAddr(t)
	cfg := writeConfig(t, `host_id: i-run-test
schedule: "@every 1s"
jitter: 0s
state_dir: "`+t.TempDir()+`"
metrics_listen: "`+metrics+`"
redis: {addr: "`+srv.Addr+`"}
serf: {bind: "`+freeAddr(t)+`"}
apps:
  - name: `+app+`
    env: testing
    repo: "`+repoDir+`"
    keyring: "`+keyring+`"
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testenv.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", cfg}, io.Discard, &stderr) }()

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	state := redisstate.New(rdb, redisstate.Options{})
	deadline := time.Now().Add(20 * time.Second)
	for {
		hosts, _ := state.Hosts(ctx, app, "testing")
		if h, ok := hosts["i-run-test"]; ok && h.Version == installed && h.State == puller.StateOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host not recorded ok on %s within 20s; log:\n%s", installed, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`aptfleet_puller_version_info{app="` + app + `",env="testing",version="` + installed + `"} 1`,
		`aptfleet_puller_last_check_timestamp_seconds{app="` + app + `",env="testing"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop within 15s of its context ending")
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", stderr.String())
	}
}
