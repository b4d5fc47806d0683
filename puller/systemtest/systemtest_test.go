package systemtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/instance"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/pkgbuild"
	"github.com/aptfleet/aptfleet/puller/apt"
	"github.com/aptfleet/aptfleet/puller/health"
	"github.com/aptfleet/aptfleet/puller/systemd"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
)

// baseRoot returns the cached Debian root instances boot from, or skips.
func baseRoot(t *testing.T) string { return testenv.TestRoot(t) }

// goTool returns the go command that runs this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// fixture builds the hello server and packages, and publishes to a signed
// local-directory repository.
type fixture struct {
	t      *testing.T
	work   string     // build tree: hello-server and the specs
	repo   *repo.Repo // the repository in repoDir
	dir    string     // repository root, served over HTTP
	pubKey []byte     // binary keyring for apt's Signed-By
	listen string     // the app's listen address (the instance shares the network)
	debs   map[string]string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, work: t.TempDir(), dir: t.TempDir(), debs: map[string]string{}}
	cmd := exec.Command(goTool(), "build", "-trimpath", "-o", filepath.Join(f.work, "hello-server"), "./testdata/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hello: %v: %s", err, out)
	}
	var key bytes.Buffer
	if err := repo.GenerateKey(&key, "aptfleet system test", "test@aptfleet.invalid", nil); err != nil {
		t.Fatal(err)
	}
	signer, err := repo.ParseSigner(key.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := signer.WritePublicKey(&pub, false); err != nil {
		t.Fatal(err)
	}
	f.pubKey = pub.Bytes()
	store, err := dir.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.repo = &repo.Repo{Store: store, Signer: signer}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.listen = l.Addr().String()
	l.Close()
	return f
}

// build packages hello at version; extra is added to the web process's
// command line.
func (f *fixture) build(version, extra string) {
	t := f.t
	spec := fmt.Sprintf(`name: hello
version: %[1]s
maintainer: aptfleet tests <tests@aptfleet.invalid>
description: web app of the puller system test
files:
  - src: hello-server
    dst: /usr/lib/hello/hello-server
    mode: "0755"
processes:
  web: /usr/lib/hello/hello-server -listen %[2]s -version %[1]s %[3]s
environment:
  GREETING: packaged-%[1]s
`, version, f.listen, extra)
	path := filepath.Join(f.work, "package-"+version+".yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := pkgbuild.Parse(strings.NewReader(spec), path)
	if err != nil {
		t.Fatalf("spec %s: %v", version, err)
	}
	deb := filepath.Join(f.work, "hello_"+version+"_amd64.deb")
	out, err := os.Create(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := pkgbuild.Build(s, out); err != nil {
		t.Fatalf("build %s: %v", version, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	f.debs[version] = deb
}

// buildSleeper packages "sleeper", whose preinst holds dpkg's lock for 4 s.
func (f *fixture) buildSleeper() string { return f.buildSleeperFor(4) }

// buildSleeperFor packages "sleeper", whose preinst holds dpkg's lock for
// seconds.
func (f *fixture) buildSleeperFor(seconds int) string {
	t := f.t
	dir := t.TempDir()
	spec := `name: sleeper
version: 1.0-1
maintainer: aptfleet tests <tests@aptfleet.invalid>
description: holds the dpkg lock for a while
hooks:
  preinst: preinst
`
	hook := fmt.Sprintf("#!/bin/sh\nexec sh -c 'sleep %d' sleeper-holds-the-dpkg-lock\n", seconds)
	if err := os.WriteFile(filepath.Join(dir, "preinst"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := pkgbuild.Parse(strings.NewReader(spec), filepath.Join(dir, "package.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, s.FileName())
	out, err := os.Create(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := pkgbuild.Build(s, out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return deb
}

func (f *fixture) publish(ctx context.Context, versions ...string) {
	var paths []string
	for _, v := range versions {
		paths = append(paths, f.debs[v])
	}
	if _, err := f.repo.Publish(ctx, "staging", "main", paths); err != nil {
		f.t.Fatalf("publish %v: %v", versions, err)
	}
}

// aptRunner and systemdRunner adapt the instance to the runners of puller/apt and
// puller/systemd: the real programs run inside it through nsenter.
func aptRunner(inst *instance.Instance) apt.Runner {
	return func(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
		return inst.Command(ctx, "env", append(append(env, name), args...)...).CombinedOutput()
	}
}

func systemdRunner(inst *instance.Instance) systemd.Runner {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return inst.Command(ctx, name, args...).CombinedOutput()
	}
}

// served answers the app's /health body, or the error.
func served(ctx context.Context, listen string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// TestInstallRestartHealth: a real apt-get install from a published repo,
// a real systemctl restart and the HTTP health check, on a booted instance;
// then an upgrade that needs a refresh of the app's source list, a kept
// conffile, recovery of an interrupted dpkg with a downgrade, a release that
// cannot start, and the rollback.
func TestInstallRestartHealth(t *testing.T) {
	base := baseRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	start := time.Now()
	f := newFixture(t)
	f.build("1.0-1", "")
	f.build("2.0-1", "")
	f.build("3.0-1", "-exit")
	f.publish(ctx, "1.0-1")
	t.Logf("packages built and published after %s", time.Since(start).Round(time.Millisecond))
	srv := httptest.NewServer(http.FileServer(http.Dir(f.dir)))
	defer srv.Close()

	sources := fmt.Sprintf("Types: deb\nURIs: %s/\nSuites: staging\nComponents: main\nSigned-By: /etc/apt/keyrings/aptfleet.gpg\n", srv.URL)
	inst, err := instance.Boot(ctx, base, instance.Options{
		Dir: t.TempDir(),
		Files: map[string][]byte{
			"/etc/apt/keyrings/aptfleet.gpg":           f.pubKey,
			"/etc/apt/sources.list.d/aptfleet.sources": []byte(sources),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if err := inst.WaitSystemRunning(ctx); err != nil && !errors.Is(err, instance.ErrDegraded) {
		t.Fatal(err)
	}

	installer := apt.New(apt.Config{SourcesList: "/etc/apt/sources.list.d/aptfleet.sources", LockTimeout: time.Minute, Run: aptRunner(inst)})
	restarter := systemd.New(systemd.Config{Run: systemdRunner(inst), Settle: 2 * time.Second})
	checker, err := health.New(health.Config{URL: "http://" + f.listen + "/health", Consecutive: 3,
		Interval: 200 * time.Millisecond, Timeout: time.Second, Deadline: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	installed := func(want string) {
		t.Helper()
		got, err := installer.Installed(ctx, "hello")
		if err != nil || got != want {
			t.Fatalf("Installed = %q, %v; want %q", got, err, want)
		}
	}
	// deploy is the agent's install, restart, health sequence.
	deploy := func(version string) error {
		if err := installer.Install(ctx, "hello", version); err != nil {
			return err
		}
		installed(version)
		if err := restarter.Restart(ctx, "hello"); err != nil {
			return err
		}
		return checker.Check(ctx)
	}
	serves := func(want string) {
		t.Helper()
		got, err := served(ctx, f.listen)
		if err != nil || got != want {
			t.Fatalf("/health = %q, %v; want %q", got, err, want)
		}
	}

	debianLists := func() string {
		out, err := inst.Shell(ctx, "stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages /var/lib/apt/lists/*Release 2>/dev/null | grep -v 127.0.0.1 || true")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(out), " ")
	}
	listsBefore := debianLists()
	if !strings.Contains(listsBefore, "deb.debian.org") {
		t.Fatalf("the base root has no Debian lists to compare: %q", listsBefore)
	}
	t.Logf("instance booted after %s", time.Since(start).Round(time.Millisecond))

	installed("")
	t.Run("first install", func(t *testing.T) {
		if err := deploy("1.0-1"); err != nil {
			t.Fatal(err)
		}
		serves("hello 1.0-1 greeting=packaged-1.0-1")
	})

	// A local change to the conffile must survive upgrades and downgrades.
	if err := inst.WriteFile(ctx, "/etc/default/hello", []byte("GREETING=local\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("upgrade after a publish", func(t *testing.T) {
		f.publish(ctx, "2.0-1") // apt does not know 2.0-1 yet: the installer refreshes the app's source
		if err := deploy("2.0-1"); err != nil {
			t.Fatal(err)
		}
		serves("hello 2.0-1 greeting=local")
		if units, err := restarter.Units(ctx, "hello"); err != nil || strings.Join(units, " ") != "hello.target hello-web.service" {
			t.Fatalf("units = %q, %v", units, err)
		}
		// The refresh touched only the app's list: the base root's Debian
		// lists are neither fetched again nor cleaned up.
		if got := debianLists(); got != listsBefore {
			t.Errorf("Debian's lists changed:\nbefore %s\nafter  %s", listsBefore, got)
		}
	})

	t.Run("interrupted dpkg, then a downgrade", func(t *testing.T) {
		// Leave dpkg half done: 1.0-1 unpacked over 2.0-1 but not configured.
		if err := inst.CopyIn(ctx, f.debs["1.0-1"], "/tmp/hello_1.0-1_amd64.deb"); err != nil {
			t.Fatal(err)
		}
		if _, err := inst.Run(ctx, "dpkg", "--unpack", "/tmp/hello_1.0-1_amd64.deb"); err != nil {
			t.Fatal(err)
		}
		installed("") // unpacked is not installed
		if err := deploy("1.0-1"); err != nil {
			t.Fatal(err)
		}
		serves("hello 1.0-1 greeting=local")
		if out, err := inst.Run(ctx, "dpkg", "--audit"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("dpkg --audit after recovery: %q, %v", out, err)
		}
	})

	t.Run("a release that cannot start, then the rollback", func(t *testing.T) {
		f.publish(ctx, "3.0-1")
		err := deploy("3.0-1")
		if err == nil || !strings.Contains(err.Error(), "after restart: hello-web.service is") {
			t.Fatalf("deploy of a crashing release = %v, want the restart check to fail", err)
		}
		if err := deploy("2.0-1"); err != nil {
			t.Fatalf("rollback to 2.0-1: %v", err)
		}
		serves("hello 2.0-1 greeting=local")
	})

	t.Run("waits for the dpkg lock", func(t *testing.T) {
		// Another dpkg run holds the lock for a few seconds (its preinst sleeps).
		sleeper := f.buildSleeper()
		waitHolder := holdDpkgLock(ctx, t, inst, sleeper)
		if err := deploy("1.0-1"); err != nil {
			t.Fatalf("deploy while another dpkg holds the lock: %v", err)
		}
		waitHolder()
		serves("hello 1.0-1 greeting=local")
	})

	t.Run("the puller's own package", func(t *testing.T) {
		testPullerPackage(ctx, t, inst, repoRoot(t))
	})

	t.Run("a version that is not published", func(t *testing.T) {
		err := installer.Install(ctx, "hello", "9.9-1")
		if !errors.Is(err, apt.ErrNotAvailable) {
			t.Fatalf("Install(9.9-1) = %v, want ErrNotAvailable", err)
		}
		installed("1.0-1")
	})

	// The unit's sandbox (packaging/puller/puller.service) must leave apt-get,
	// dpkg, the maintainer scripts and the app's restart working: a drop-in
	// swaps only the command, so they run under the unit's own settings.
	t.Run("apt, dpkg and a restart inside the puller's unit", func(t *testing.T) {
		if _, err := inst.Run(ctx, "systemctl", "cat", "puller.service"); err != nil {
			testenv.Skip(t, "the puller's package is not installed (see the subtest above)")
		}
		out, err := inst.Run(ctx, "systemd-analyze", "security", "--no-pager", "puller.service")
		m := exposureRE.FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("systemd-analyze security: %v\n%s", err, out)
		}
		exposure, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("systemd-analyze security puller.service: overall exposure %s", m[1])
		if exposure > maxExposure {
			t.Errorf("puller.service's exposure is %.1f, want at most %.1f:\n%s", exposure, maxExposure, out)
		}
		dropIn := "[Unit]\nConditionPathExists=\n[Service]\nType=oneshot\nRestart=no\nExecStart=\n" +
			"ExecStart=/bin/sh -ec 'apt-get -q -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/aptfleet.sources -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 update; " +
			"DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install -y --allow-downgrades hello=2.0-1; " +
			"dpkg-query -W hello; systemctl restart hello.target; echo sandboxed-run-done'\n"
		if err := inst.WriteFile(ctx, "/etc/systemd/system/puller.service.d/zz-sandbox-test.conf", []byte(dropIn), 0o644); err != nil {
			t.Fatal(err)
		}
		defer func() {
			inst.Shell(ctx, "rm -f /etc/systemd/system/puller.service.d/zz-sandbox-test.conf && systemctl daemon-reload")
		}()
		if out, err := inst.Shell(ctx, "systemctl daemon-reload && systemctl start puller.service"); err != nil {
			journal, _ := inst.Run(ctx, "journalctl", "--no-pager", "-o", "cat", "-u", "puller.service", "-n", "40")
			t.Fatalf("apt-get inside puller.service: %v %s\n%s", err, out, journal)
		}
		journal, _ := inst.Run(ctx, "journalctl", "--no-pager", "-o", "cat", "-u", "puller.service", "-n", "40")
		if !strings.Contains(journal, "sandboxed-run-done") {
			t.Fatalf("the sandboxed run did not finish:\n%s", journal)
		}
		installed("2.0-1")
		if err := checker.Check(ctx); err != nil {
			t.Fatalf("health after the restart inside puller.service: %v", err)
		}
		serves("hello 2.0-1 greeting=local")
	})
}

// repoRoot is the module root (this package is puller/systemtest).
// exposureRE reads systemd-analyze security's overall score.
var exposureRE = regexp.MustCompile(`Overall exposure level for puller\.service: ([0-9.]+)`)

// maxExposure is the most systemd-analyze security may score the puller's
// unit (0 safest, 10 unsandboxed; 9.6 before the sandboxing lines).
const maxExposure = 4.0

func repoRoot(t *testing.T) string {
	abs, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// testPullerPackage builds root's cmd/puller, packages it from
// packaging/puller/package.yaml as `make packages` does, and installs it on
// inst: the unit is valid, installed but not enabled (user-data enables it
// after `puller bootstrap`), and the binary runs. lintian checks the same
// package built around a small stand-in binary (its binary checks take
// minutes on the real program; `make packages` runs it on the real one).
func testPullerPackage(ctx context.Context, t *testing.T, inst *instance.Instance, root string) {
	testenv.NeedTools(t, "lintian")
	if _, err := os.Stat(filepath.Join(root, "cmd/puller")); err != nil {
		testenv.Skip(t, "cmd/puller is not in this tree")
	}
	deb := buildPullerDeb(t, root, root, "./cmd/puller")
	stub := buildPullerDeb(t, root, ".", "./testdata/stub")
	if lout, err := exec.CommandContext(ctx, "lintian", "--fail-on", "error", stub).CombinedOutput(); err != nil {
		t.Fatalf("lintian %s: %v\n%s", filepath.Base(stub), err, lout)
	}

	if err := inst.CopyIn(ctx, deb, "/tmp/puller.deb"); err != nil {
		t.Fatal(err)
	}
	if _, err := inst.Run(ctx, "dpkg", "-i", "/tmp/puller.deb"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // substring of the output
	}{
		{"unit is valid", []string{"systemd-analyze", "verify", "/lib/systemd/system/puller.service"}, ""},
		{"unit runs puller run", []string{"systemctl", "cat", "puller.service"}, "ExecStart=/usr/bin/puller run --config /etc/aptfleet/puller.yaml"},
		{"binary runs", []string{"/usr/bin/puller", "version"}, "0.1.0-test"},
	} {
		got, err := inst.Run(ctx, tc.args[0], tc.args[1:]...)
		if err != nil || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if got, _ := inst.Run(ctx, "systemctl", "is-enabled", "puller.service"); strings.TrimSpace(got) != "disabled" {
		t.Errorf("puller.service after install is %q, want disabled until user-data enables it", strings.TrimSpace(got))
	}
	if got, _ := inst.Run(ctx, "systemctl", "is-active", "puller.service"); strings.TrimSpace(got) != "inactive" {
		t.Errorf("puller.service after install is %q, want inactive", strings.TrimSpace(got))
	}
}

// buildPullerDeb builds the Go program pkg (in dir) as bin/puller, stripped
// and static as the Makefile builds it, and packages it with root's
// packaging/puller spec, laid out in a scratch tree as in the repository.
func buildPullerDeb(t *testing.T, root, dir, pkg string) string {
	work := t.TempDir()
	cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags", "-s -w -X main.version=0.1.0-test",
		"-o", filepath.Join(work, "bin/puller"), pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v: %s", pkg, err, out)
	}
	specDir := filepath.Join(work, "packaging/puller")
	if err := os.MkdirAll(specDir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "packaging/puller"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(root, "packaging/puller", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(specDir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	specPath := filepath.Join(specDir, "package.yaml")
	text, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := pkgbuild.Parse(bytes.NewReader(text), specPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.SetVersion("0.1.0-1"); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(work, spec.FileName())
	out, err := os.Create(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := pkgbuild.Build(spec, out); err != nil {
		t.Fatalf("build the puller package: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return deb
}

// holdDpkgLock installs deb (whose preinst sleeps) in inst with dpkg, so that
// it holds the dpkg lock, and returns once its preinst runs. The returned
// func waits for that dpkg run to end and fails t if it failed.
func holdDpkgLock(ctx context.Context, t *testing.T, inst *instance.Instance, deb string) (wait func()) {
	t.Helper()
	if err := inst.CopyIn(ctx, deb, "/tmp/sleeper.deb"); err != nil {
		t.Fatal(err)
	}
	holder := inst.Command(ctx, "dpkg", "-i", "/tmp/sleeper.deb")
	var holderOut bytes.Buffer
	holder.Stdout, holder.Stderr = &holderOut, &holderOut
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	for {
		if out, _ := inst.Run(ctx, "pgrep", "-f", "sleeper-holds-the-dpkg-lock"); strings.TrimSpace(out) != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the other dpkg run never started its preinst")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		t.Helper()
		if err := holder.Wait(); err != nil {
			t.Fatalf("the other dpkg run: %v: %s", err, holderOut.String())
		}
	}
}
