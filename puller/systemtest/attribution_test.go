package systemtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/internal/instance"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/apt"
	"github.com/aptfleet/aptfleet/puller/health"
	"github.com/aptfleet/aptfleet/puller/redislock"
	"github.com/aptfleet/aptfleet/puller/redisstate"
	"github.com/aptfleet/aptfleet/puller/systemd"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
)

// one is a membership of one live host.
type one struct{}

func (one) Alive(app, env string) int { return 1 }

// TestFailureAttribution runs the agent (real semaphore and state on a real
// redis-server, the signed repository through repo.Reader) with the real
// apt-get, dpkg and systemctl of a booted instance, and makes real failures
// happen: the app's source file missing, /var/cache/apt/archives full (a
// small tmpfs), the dpkg lock held past the installer's wait, and a release
// whose /health answers 503. The first three are the host's: no broken mark,
// the host is recorded failed. The last is the release's: with broken_after
// 2 the first host's failure marks nothing and the second one's brands it.
func TestFailureAttribution(t *testing.T) {
	base := baseRoot(t)
	srvRedis := testenv.StartRedis(t, testenv.RedisOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	f := newFixture(t)
	f.build("1.0-1", "")
	f.build("2.0-1", "")
	f.build("3.0-1", "-status 503")
	f.publish(ctx, "1.0-1")
	srv := httptest.NewServer(http.FileServer(http.Dir(f.dir)))
	defer srv.Close()
	const sourcesPath = "/etc/apt/sources.list.d/aptfleet.sources"
	sources := fmt.Sprintf("Types: deb\nURIs: %s/\nSuites: staging\nComponents: main\nSigned-By: /etc/apt/keyrings/aptfleet.gpg\n", srv.URL)
	inst, err := instance.Boot(ctx, base, instance.Options{
		Dir: t.TempDir(),
		Files: map[string][]byte{
			"/etc/apt/keyrings/aptfleet.gpg": f.pubKey,
			sourcesPath:                      []byte(sources),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if err := inst.WaitSystemRunning(ctx); err != nil && !errors.Is(err, instance.ErrDegraded) {
		t.Fatal(err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: srvRedis.Addr})
	defer rdb.Close()
	quiet := slog.New(slog.DiscardHandler)
	sem := redislock.New(rdb, redislock.Options{TTL: 2 * time.Second, PollEvery: 100 * time.Millisecond, Logger: quiet})
	state := redisstate.New(rdb, redisstate.Options{})
	store, err := dir.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := repo.ParseKeyring(f.pubKey)
	if err != nil {
		t.Fatal(err)
	}
	restarter := systemd.New(systemd.Config{Run: systemdRunner(inst), Settle: 2 * time.Second})
	checker, err := health.New(health.Config{URL: "http://" + f.listen + "/health", Consecutive: 3,
		Interval: 200 * time.Millisecond, Timeout: time.Second, Deadline: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// agent is host's agent; its installer reads sources and waits lockWait
	// for the dpkg lock.
	agent := func(host, sources string, lockWait time.Duration, brokenAfter int) *puller.Agent {
		cfg, err := puller.ParseConfig("puller.yaml", strings.NewReader(fmt.Sprintf(
			"apps:\n  - {name: hello, env: staging, repo: %q, sources_list: %q}\nfraction: 1\nlock_ttl: 2s\nlock_poll: 200ms\nbroken_after: %d\n",
			f.dir, sources, brokenAfter)))
		if err != nil {
			t.Fatal(err)
		}
		a, err := puller.New(cfg, host, puller.Deps{
			Apps: []puller.AppDeps{{
				Index:     puller.RepoIndex{Reader: &repo.Reader{Store: store, Keyring: kr, Architecture: "amd64"}, App: "hello"},
				Installer: apt.New(apt.Config{SourcesList: sources, LockTimeout: lockWait, Run: aptRunner(inst)}),
				Restarter: restarter, Checker: checker,
			}},
			Lock: sem, State: state, Members: one{}, Compare: debian.CompareVersions, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	installed := func() string {
		t.Helper()
		v, err := apt.New(apt.Config{SourcesList: sourcesPath, Run: aptRunner(inst)}).Installed(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// hostFault runs one cycle of a new host and wants a host fault of kind,
	// no broken mark, the host recorded failed, and 1.0-1 still installed.
	hostFault := func(t *testing.T, a *puller.Agent, kind puller.HostFaultKind) {
		t.Helper()
		err := a.Once(ctx)
		if !errors.Is(err, puller.ErrHostFault) || !strings.Contains(err.Error(), "(host fault: "+string(kind)+")") {
			t.Fatalf("cycle: %v; want a host fault of kind %s", err, kind)
		}
		t.Logf("host fault: %v", err)
		if b, err := state.Broken(ctx, "hello", "staging"); err != nil || len(b) != 0 {
			t.Fatalf("broken marks after a host fault: %v, %v; want none", b, err)
		}
		if hs, err := state.Hosts(ctx, "hello", "staging"); err != nil || hs[a.Host()].State != puller.StateFailed {
			t.Fatalf("host record after a host fault: %+v, %v; want state failed", hs[a.Host()], err)
		}
		if v := installed(); v != "1.0-1" {
			t.Fatalf("installed %q after a host fault, want 1.0-1", v)
		}
	}

	if err := agent("i-first", sourcesPath, time.Minute, 1).Once(ctx); err != nil {
		t.Fatalf("first install: %v", err)
	}
	if v := installed(); v != "1.0-1" {
		t.Fatalf("installed %q, want 1.0-1", v)
	}
	f.publish(ctx, "2.0-1") // apt does not know it yet: every host below must refresh

	t.Run("a missing source file", func(t *testing.T) {
		hostFault(t, agent("i-source", "/etc/apt/sources.list.d/missing.sources", time.Minute, 1), puller.HostSource)
	})

	t.Run("a full filesystem", func(t *testing.T) {
		if _, err := inst.Shell(ctx, "mount -t tmpfs -o size=64k tmpfs /var/cache/apt/archives && mkdir -p /var/cache/apt/archives/partial"); err != nil {
			t.Fatal(err)
		}
		defer inst.Shell(context.WithoutCancel(ctx), "umount /var/cache/apt/archives")
		hostFault(t, agent("i-disk", sourcesPath, time.Minute, 1), puller.HostDiskFull)
	})

	t.Run("the dpkg lock held past the wait", func(t *testing.T) {
		sleeper := f.buildSleeperFor(30)
		waitHolder := holdDpkgLock(ctx, t, inst, sleeper)
		hostFault(t, agent("i-lock", sourcesPath, 2*time.Second, 1), puller.HostDpkgLock)
		waitHolder()
	})

	t.Run("a release whose health check fails, broken_after 2", func(t *testing.T) {
		f.publish(ctx, "3.0-1")
		for i, host := range []string{"i-health-1", "i-health-2"} {
			err := agent(host, sourcesPath, time.Minute, 2).Once(ctx)
			if !errors.Is(err, puller.ErrDeployFailed) {
				t.Fatalf("%s: cycle %v; want a release failure", host, err)
			}
			b, err := state.IsBroken(ctx, "hello", "staging", "3.0-1")
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 && b != nil {
				t.Fatalf("3.0-1 marked broken after one host's failure, with broken_after 2: %+v", b)
			}
			if i == 1 && (b == nil || !strings.Contains(b.Reason, "503")) {
				t.Fatalf("3.0-1 after the second host's failure: %+v; want it marked broken with the health check's reason", b)
			}
			if v := installed(); v != "1.0-1" {
				t.Fatalf("%s left %q installed, want the rollback to 1.0-1", host, v)
			}
		}
	})
}
