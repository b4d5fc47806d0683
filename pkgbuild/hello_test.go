package pkgbuild_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/instance"
	"github.com/aptfleet/aptfleet/internal/testenv"
)

// buildHello compiles examples/hello stamped with version and packages it
// with examples/hello/package.yaml, returning the .deb's path.
func buildHello(t *testing.T, version string) string {
	t.Helper()
	return buildHelloWith(t, version, "", nil)
}

// buildHelloWith is buildHello with extra lines appended to package.yaml and
// extra files (path relative to the spec: content) beside it.
func buildHelloWith(t *testing.T, version, extraSpec string, extraFiles map[string]string) string {
	t.Helper()
	testenv.NeedTools(t, "go")
	dir := t.TempDir()
	for _, f := range []string{"package.yaml", "Procfile"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "package.yaml" {
			b = append(b, extraSpec...)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	for name, body := range extraFiles {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version,
		"-o", filepath.Join(dir, "bin", "hello"), "../examples/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hello: %v\n%s", err, out)
	}
	s := loadSpec(t, filepath.Join(dir, "package.yaml"))
	if err := s.SetVersion(version); err != nil {
		t.Fatal(err)
	}
	s.ModTime = epoch
	deb := filepath.Join(dir, s.FileName())
	if err := os.WriteFile(deb, build(t, s), 0o644); err != nil {
		t.Fatal(err)
	}
	return deb
}

// acceptedLintian are the lintian tags accepted on the hello package, each
// explained in the README ("Building packages").
var acceptedLintian = []string{
	"W: hello: initial-upload-closes-no-bugs [usr/share/doc/hello/changelog.Debian.gz:1]",
	"W: hello: no-manual-page [usr/bin/hello]",
	"W: hello: systemd-service-file-refers-to-unusual-wantedby-target hello.target [lib/systemd/system/hello-clock.service]",
	"W: hello: systemd-service-file-refers-to-unusual-wantedby-target hello.target [lib/systemd/system/hello-web.service]",
}

// TestLintian runs lintian on the hello package: no errors, and no warnings
// beyond the accepted ones.
func TestLintian(t *testing.T) {
	testenv.NeedTools(t, "lintian")
	deb := buildHello(t, "1.0.0-1")
	out, err := exec.Command("lintian", "--no-tag-display-limit", deb).CombinedOutput()
	var tags []string
	for _, line := range strings.Split(string(out), "\n") {
		if regexp.MustCompile(`^[EWX]: `).MatchString(line) {
			tags = append(tags, line)
		}
	}
	if err != nil && len(tags) == 0 {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	for _, tag := range tags {
		if strings.HasPrefix(tag, "E: ") || !slices.Contains(acceptedLintian, tag) {
			t.Errorf("lintian: %s", tag)
		}
	}
	t.Logf("lintian output:\n%s", out)
}

// TestHelloInstance installs the hello package on a booted Debian instance
// with systemd and checks what an operator relies on: the units verify,
// are enabled and started on first install, run as the hello user, answer
// /healthz on the port from /etc/default/hello, log to the journal; an
// upgrade does not restart them (a restart of hello.target does); removal
// stops them.
func TestHelloInstance(t *testing.T) {
	base := testenv.TestRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	v1, v2 := buildHello(t, "1.0.0-1"), buildHello(t, "1.0.1-1")
	port := testenv.FreePort(t)
	inst, err := instance.Boot(ctx, base, instance.Options{
		Dir: t.TempDir(),
		// The instance shares the machine's network: give hello its own port
		// before the package's first start. dpkg keeps this local conffile
		// (--force-confold), as it would an operator's.
		Files: map[string][]byte{
			"/etc/default/hello": fmt.Appendf(nil, "PORT=%d\nDRAIN_TIMEOUT=5s\nCLOCK_INTERVAL=1s\n", port),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	if err := inst.WaitSystemRunning(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, script string) string {
		t.Helper()
		out, err := inst.Shell(ctx, script)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	install := func(t *testing.T, deb string) {
		t.Helper()
		if err := inst.CopyIn(ctx, deb, "/tmp/"+filepath.Base(deb)); err != nil {
			t.Fatal(err)
		}
		run(t, "dpkg --force-confold -i /tmp/"+filepath.Base(deb))
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	mainPID := func(t *testing.T, unit string) string {
		return strings.TrimSpace(run(t, "systemctl show -P MainPID "+unit))
	}

	t.Run("first install", func(t *testing.T) {
		install(t, v1)
	})
	t.Run("units verify", func(t *testing.T) {
		// systemd-analyze verify prints problems and exits non-zero on errors.
		out := run(t, "systemd-analyze verify /lib/systemd/system/hello-web.service "+
			"/lib/systemd/system/hello-clock.service /lib/systemd/system/hello.target 2>&1")
		if strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify:\n%s", out)
		}
	})
	t.Run("units enabled and started", func(t *testing.T) {
		if out := run(t, "systemctl is-enabled hello.target hello-web.service hello-clock.service"); out != "enabled\nenabled\nenabled\n" {
			t.Errorf("is-enabled:\n%s", out)
		}
		if out := run(t, "systemctl is-active hello.target hello-web.service hello-clock.service"); out != "active\nactive\nactive\n" {
			t.Errorf("is-active:\n%s", out)
		}
	})
	t.Run("runs as the hello system user", func(t *testing.T) {
		out := run(t, "ps -o user= -p "+mainPID(t, "hello-web.service")+"; getent passwd hello | cut -d: -f6,7")
		if out != "hello\n/nonexistent:/usr/sbin/nologin\n" {
			t.Errorf("got %q", out)
		}
	})
	t.Run("answers healthz on the configured port", func(t *testing.T) {
		waitBody(t, ctx, url+"/healthz", "ok\n")
		waitBody(t, ctx, url+"/", "hello 1.0.0-1\n")
	})
	t.Run("the environment file is a kept conffile", func(t *testing.T) {
		out := run(t, "dpkg-query -W -f='${Conffiles}' hello; grep -c CLOCK_INTERVAL=1s /etc/default/hello")
		if !strings.Contains(out, "/etc/default/hello") || !strings.HasSuffix(out, "1\n") {
			t.Errorf("got %q", out)
		}
	})
	t.Run("logs go to the journal", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			out := run(t, "journalctl --no-pager -o cat -u hello-web.service -u hello-clock.service")
			if strings.Contains(out, "msg=serving") && strings.Contains(out, "msg=tick") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("journal:\n%s", out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("upgrade does not restart", func(t *testing.T) {
		web, clock := mainPID(t, "hello-web.service"), mainPID(t, "hello-clock.service")
		install(t, v2)
		if got := mainPID(t, "hello-web.service"); got != web {
			t.Errorf("hello-web restarted by the upgrade: PID %s -> %s", web, got)
		}
		if got := mainPID(t, "hello-clock.service"); got != clock {
			t.Errorf("hello-clock restarted by the upgrade: PID %s -> %s", clock, got)
		}
		waitBody(t, ctx, url+"/", "hello 1.0.0-1\n")
		if out := run(t, "dpkg-query -W -f='${Version}' hello"); out != "1.0.1-1" {
			t.Errorf("installed version %q", out)
		}
	})
	t.Run("restarting the target restarts every process", func(t *testing.T) {
		web, clock := mainPID(t, "hello-web.service"), mainPID(t, "hello-clock.service")
		run(t, "systemctl restart hello.target")
		if mainPID(t, "hello-web.service") == web || mainPID(t, "hello-clock.service") == clock {
			t.Error("a process kept its PID across systemctl restart hello.target")
		}
		waitBody(t, ctx, url+"/", "hello 1.0.1-1\n")
	})
	t.Run("hardening lowers the exposure and the service still serves", func(t *testing.T) {
		// The exposure systemd-analyze security gives the unhardened unit,
		// then the same package with hardening, per-process options, a
		// conffile only its service reads and a secrets file written 0600
		// outside the package.
		exposure := func(t *testing.T) float64 {
			t.Helper()
			out := run(t, "systemd-analyze security --no-pager hello-web.service | tail -n 1")
			m := regexp.MustCompile(`exposure level for hello-web\.service: ([0-9.]+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("systemd-analyze security: %q", out)
			}
			var v float64
			fmt.Sscan(m[1], &v)
			return v
		}
		before := exposure(t)
		v3 := buildHelloWith(t, "1.0.2-1", "hardening: true\n"+
			"process_options:\n  web: {working_directory: /usr/share/doc/hello, limits: {nofile: 4096}, stop_timeout: 20s}\n"+
			"config_files:\n  - {src: hello.conf, dst: /etc/hello/hello.conf, mode: \"0640\"}\n"+
			"environment_files: [/etc/hello/secrets.env]\n",
			map[string]string{"hello.conf": "token=abc\n"})
		install(t, v3)
		if err := inst.WriteFile(ctx, "/etc/hello/secrets.env", []byte("HELLO_SECRET=s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, "chown root:root /etc/hello/secrets.env; systemctl restart hello.target")
		waitBody(t, ctx, url+"/", "hello 1.0.2-1\n")
		after := exposure(t)
		t.Logf("systemd-analyze security hello-web.service: %.1f without hardening, %.1f with", before, after)
		if after >= before {
			t.Errorf("exposure %.1f with hardening, %.1f without: it did not go down", after, before)
		}
		if out := run(t, "systemd-analyze verify /lib/systemd/system/hello-web.service /lib/systemd/system/hello-clock.service 2>&1"); strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify:\n%s", out)
		}
		pid := mainPID(t, "hello-web.service")
		checks := []struct{ script, want string }{
			{"systemctl show -P LimitNOFILE hello-web.service", "4096\n"},
			{"systemctl show -P TimeoutStopUSec hello-web.service", "20s\n"},
			{"readlink /proc/" + pid + "/cwd", "/usr/share/doc/hello\n"},
			{"stat -c %U:%G:%a /etc/hello/hello.conf", "root:hello:640\n"},
			{"setpriv --reuid=hello --regid=hello --clear-groups cat /etc/hello/hello.conf", "token=abc\n"},
			{"tr '\\0' '\\n' < /proc/" + pid + "/environ | grep ^HELLO_SECRET=", "HELLO_SECRET=s3cret\n"},
		}
		for _, c := range checks {
			if out := run(t, c.script); out != c.want {
				t.Errorf("%s: %q, want %q", c.script, out, c.want)
			}
		}
	})
	t.Run("removal stops the services", func(t *testing.T) {
		run(t, "dpkg -r hello")
		out, _ := inst.Run(ctx, "systemctl", "is-active", "hello-web.service", "hello-clock.service")
		if out != "inactive\ninactive\n" {
			t.Errorf("after removal: %q", out)
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Error("port still open after removal")
		}
	})
}

// waitBody polls url until it answers 200 with body want.
func waitBody(t *testing.T, ctx context.Context, url, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Equal(b, []byte(want)) {
				return
			}
			last = fmt.Sprintf("%d %q", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s: want 200 %q, last answer: %s", url, want, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
