package apt

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
)

// The shape the agent declares (puller.Installer).
var _ interface {
	Installed(ctx context.Context, pkg string) (string, error)
	Install(ctx context.Context, pkg, version string) error
} = (*Installer)(nil)

// script is a recording Runner: each call is matched against the steps in
// order of their prefixes; the first step whose prefix matches the command
// line answers. It stands in for apt-get and dpkg in tests of argv and error
// handling; the real programs run in the system test (puller/systemtest).
type script struct {
	mu    sync.Mutex
	steps []step
	calls []string
	envs  [][]string
}

type step struct {
	prefix string // command line prefix, e.g. "apt-get -o DPkg::Lock::Timeout=300 install"
	out    string
	code   int // exit status; 0 = success
	times  int // how many calls it answers; 0 = unlimited
}

func (s *script) run(_ context.Context, env []string, name string, args ...string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := strings.Join(append([]string{name}, args...), " ")
	s.calls = append(s.calls, line)
	s.envs = append(s.envs, env)
	for i := range s.steps {
		st := &s.steps[i]
		if !strings.HasPrefix(line, st.prefix) || st.times < 0 {
			continue
		}
		if st.times > 0 {
			if st.times == 1 {
				st.times = -1
			} else {
				st.times--
			}
		}
		if st.code != 0 {
			return []byte(st.out), exitErr(st.code)
		}
		return []byte(st.out), nil
	}
	return nil, nil
}

// exitErr returns a real *exec.ExitError with the given status.
func exitErr(code int) error {
	return exec.Command("sh", "-c", "exit "+strconv.Itoa(code)).Run()
}

// auditCmd is the query of every package's state before an install.
const auditCmd = "dpkg-query --show --showformat=${Status}\t${binary:Package}\n"

// installedCmd is Installed's query.
const installedCmd = "dpkg-query --show --showformat=${Status}\t${Version}\n hello"

const madisonV2 = " hello |    2.0-1 | http://127.0.0.1/repo staging/main amd64 Packages\n hello |    1.0-1 | http://127.0.0.1/repo staging/main amd64 Packages\n"

func TestInstall(t *testing.T) {
	src := filepath.Join(t.TempDir(), "aptfleet.sources") // Install refuses a missing source list
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	installCmd := "apt-get -o DPkg::Lock::Timeout=300 install --yes --allow-downgrades --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold hello=2.0-1"
	updateCmd := "apt-get -o DPkg::Lock::Timeout=300 update -o Dir::Etc::sourcelist=" + src + " -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0"
	checkCmd := "test -r " + src // the source list is checked through the runner
	tests := []struct {
		name    string
		steps   []step
		want    []string // the exact commands, in order
		wantErr string
	}{
		{
			name: "known version installs without update",
			steps: []step{
				{prefix: "apt-cache madison hello", out: madisonV2},
				{prefix: installedCmd, out: "install ok installed\t2.0-1\n"},
			},
			want: []string{
				auditCmd,
				"apt-cache madison hello",
				installCmd,
				installedCmd,
			},
		},
		{
			name: "unknown version refreshes only the app's source list",
			steps: []step{
				{prefix: "apt-cache madison hello", out: " hello | 1.0-1 | http://x staging/main amd64 Packages\n", times: 1},
				{prefix: "apt-cache madison hello", out: madisonV2},
				{prefix: installedCmd, out: "install ok installed\t2.0-1\n"},
			},
			want: []string{
				auditCmd,
				"apt-cache madison hello",
				checkCmd,
				updateCmd,
				"apt-cache madison hello",
				installCmd,
				installedCmd,
			},
		},
		{
			name: "version missing after update",
			steps: []step{
				{prefix: "apt-cache madison hello", out: " hello | 1.0-1 | http://x staging/main amd64 Packages\n"},
			},
			want:    []string{auditCmd, "apt-cache madison hello", checkCmd, updateCmd, "apt-cache madison hello"},
			wantErr: "install hello=2.0-1: apt: version not available after refreshing " + src + "",
		},
		{
			name: "update fetch failure is an error even with exit 0",
			steps: []step{
				{prefix: "apt-cache madison hello", out: ""},
				{prefix: "apt-get -o DPkg::Lock::Timeout=300 update", out: "Err:1 http://127.0.0.1:1 staging InRelease\nW: Failed to fetch http://127.0.0.1:1/dists/staging/InRelease  Connection refused\nW: Some index files failed to download. They have been ignored, or old ones used instead.\n"},
			},
			want:    []string{auditCmd, "apt-cache madison hello", checkCmd, updateCmd},
			wantErr: "apt-get update " + src + ": W: Failed to fetch http://127.0.0.1:1/dists/staging/InRelease  Connection refused; W: Some index files failed to download. They have been ignored, or old ones used instead.",
		},
		{
			name: "interrupted dpkg is recovered first",
			steps: []step{
				{prefix: auditCmd, out: "install ok installed\tdpkg\ninstall ok half-configured\thello\n"},
				{prefix: "apt-cache madison hello", out: madisonV2},
				{prefix: installedCmd, out: "install ok installed\t2.0-1\n"},
			},
			want: []string{
				auditCmd,
				"dpkg --force-confdef --force-confold --configure -a",
				"apt-cache madison hello",
				installCmd,
				installedCmd,
			},
		},
		{
			name: "apt reporting an interruption recovers and retries once",
			steps: []step{
				{prefix: "apt-cache madison hello", out: madisonV2},
				{prefix: installCmd, out: "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n", code: 100, times: 1},
				{prefix: installedCmd, out: "install ok installed\t2.0-1\n"},
			},
			want: []string{
				auditCmd,
				"apt-cache madison hello",
				installCmd,
				"dpkg --force-confdef --force-confold --configure -a",
				installCmd,
				installedCmd,
			},
		},
		{
			name: "install failure carries apt's last lines",
			steps: []step{
				{prefix: "apt-cache madison hello", out: madisonV2},
				{prefix: installCmd, out: "Reading package lists...\nSetting up hello (2.0-1) ...\ndpkg: error processing package hello (--configure):\n installed hello package post-installation script subprocess returned error exit status 1\nE: Sub-process /usr/bin/dpkg returned an error code (1)\n", code: 100},
			},
			want:    []string{auditCmd, "apt-cache madison hello", installCmd},
			wantErr: "apt-get install hello=2.0-1: exit status 100: dpkg: error processing package hello (--configure): | installed hello package post-installation script subprocess returned error exit status 1 | E: Sub-process /usr/bin/dpkg returned an error code (1)",
		},
		{
			name: "a different version afterwards is an error",
			steps: []step{
				{prefix: "apt-cache madison hello", out: madisonV2},
				{prefix: installedCmd, out: "install ok half-configured\t2.0-1\n"},
			},
			want: []string{
				auditCmd, "apt-cache madison hello", installCmd,
				installedCmd,
			},
			wantErr: `apt-get install hello=2.0-1: dpkg reports "" installed afterwards`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{steps: tt.steps}
			in := New(Config{SourcesList: src, Run: s.run})
			err := in.Install(context.Background(), "hello", "2.0-1")
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Install: %v", err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Install error:\n got %v\nwant %s", err, tt.wantErr)
			}
			if strings.Join(s.calls, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("commands:\n got %q\nwant %q", s.calls, tt.want)
			}
			for i, env := range s.envs {
				if strings.HasPrefix(s.calls[i], "apt-get") && !contains(env, "DEBIAN_FRONTEND=noninteractive") {
					t.Errorf("%s ran without DEBIAN_FRONTEND=noninteractive: %q", s.calls[i], env)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestInstallWithoutSourcesList(t *testing.T) {
	s := &script{steps: []step{{prefix: "apt-cache madison hello", out: ""}}}
	err := New(Config{Run: s.run}).Install(context.Background(), "hello", "2.0-1")
	if !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("Install: %v, want ErrNotAvailable", err)
	}
	for _, c := range s.calls {
		if strings.Contains(c, " update") {
			t.Errorf("ran %q with no source list configured", c)
		}
	}
}

func TestConfigureWaitsForTheLock(t *testing.T) {
	s := &script{steps: []step{
		{prefix: auditCmd, out: "install ok unpacked\thello\n"},
		{prefix: "dpkg --force-confdef", out: "dpkg: error: dpkg frontend lock was locked by another process with pid 42\n", code: 2, times: 2},
		{prefix: "apt-cache madison hello", out: madisonV2},
		{prefix: installedCmd, out: "install ok installed\t2.0-1\n"},
	}}
	if err := New(Config{Run: s.run, LockTimeout: time.Minute}).Install(context.Background(), "hello", "2.0-1"); err != nil {
		t.Fatalf("Install: %v", err)
	}
	n := 0
	for _, c := range s.calls {
		if strings.HasPrefix(c, "dpkg --force-confdef") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("dpkg --configure -a ran %d times, want 3 (two lock failures, then success)", n)
	}
}

func TestBadInput(t *testing.T) {
	s := &script{}
	in := New(Config{Run: s.run})
	for _, tt := range []struct{ name, pkg, version, want string }{
		{"empty package", "", "1.0", `bad package name ""`},
		{"option as package", "-f", "1.0", `bad package name "-f"`},
		{"empty version", "hello", "", `install hello: bad version ""`},
		{"version with space", "hello", "1.0 evil", `install hello: bad version "1.0 evil"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := in.Install(context.Background(), tt.pkg, tt.version)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Install(%q, %q) = %v, want %s", tt.pkg, tt.version, err, tt.want)
			}
		})
	}
	if len(s.calls) != 0 {
		t.Errorf("bad input ran commands: %q", s.calls)
	}
}

// TestInstalledReal queries the machine's real dpkg database.
func TestInstalledReal(t *testing.T) {
	testenv.NeedTools(t, "dpkg-query")
	out, err := exec.Command("dpkg-query", "--show", "--showformat=${Version}", "dpkg").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	in := New(Config{})
	for _, tt := range []struct{ name, pkg, want string }{
		{"installed", "dpkg", string(out)},
		{"unknown", "aptfleet-no-such-package", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := in.Installed(context.Background(), tt.pkg)
			if err != nil || got != tt.want {
				t.Fatalf("Installed(%s) = %q, %v; want %q", tt.pkg, got, err, tt.want)
			}
		})
	}
}

func TestInstalledStates(t *testing.T) {
	for _, tt := range []struct{ name, out, want string }{
		{"installed", "install ok installed\t1.0-1\n", "1.0-1"},
		{"held", "hold ok installed\t1.0-1\n", "1.0-1"},
		{"removed, conffiles kept", "deinstall ok config-files\t1.0-1\n", ""},
		{"half installed", "install reinstreq half-installed\t1.0-1\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{steps: []step{{prefix: installedCmd, out: tt.out}}}
			got, err := New(Config{Run: s.run}).Installed(context.Background(), "hello")
			if err != nil || got != tt.want {
				t.Fatalf("Installed = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestExec(t *testing.T) {
	t.Run("environment is added", func(t *testing.T) {
		out, err := Exec(context.Background(), []string{"APTFLEET_TEST=1"}, "sh", "-c", "echo $APTFLEET_TEST; exit 3")
		var ee *exec.ExitError
		if string(out) != "1\n" || !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("Exec = %q, %v", out, err)
		}
	})
	t.Run("a cancelled context starts nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		marker := t.TempDir() + "/ran"
		if _, err := Exec(ctx, nil, "touch", marker); !errors.Is(err, context.Canceled) {
			t.Fatalf("Exec = %v, want context.Canceled", err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the command ran")
		}
	})
	t.Run("a running command is not killed by cancellation", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		marker := t.TempDir() + "/done"
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		if _, err := Exec(ctx, nil, "sh", "-c", "sleep 0.3; touch "+marker); err != nil {
			t.Fatalf("Exec: %v", err)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatal("the command was stopped before finishing")
		}
	})
}

// Host-side failures come back as puller.HostFaultError of their kind; a
// package's own failure (its maintainer scripts) is left unclassified.
func TestInstallClassifiesHostFaults(t *testing.T) {
	src := filepath.Join(t.TempDir(), "aptfleet.sources")
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	install := "apt-get -o DPkg::Lock::Timeout=300 install"
	tests := []struct {
		name    string
		sources string
		steps   []step
		kind    puller.HostFaultKind // "" for unclassified
	}{
		{"missing source file", filepath.Join(t.TempDir(), "missing.sources"), []step{{prefix: "test -r", code: 1}}, puller.HostSource},
		{"version not found", src, []step{{prefix: "apt-cache madison hello", out: ""}}, puller.HostFetch},
		{"disk full", src, []step{{prefix: "apt-cache madison hello", out: madisonV2},
			{prefix: install, code: 100, out: "E: Write error - write (28: No space left on device)"}}, puller.HostDiskFull},
		{"fetch failed", src, []step{{prefix: "apt-cache madison hello", out: madisonV2},
			{prefix: install, code: 100, out: "E: Failed to fetch http://127.0.0.1:1/pool/main/h/hello/hello_2.0-1_amd64.deb  Connection refused"}}, puller.HostFetch},
		{"dpkg lock", src, []step{{prefix: "apt-cache madison hello", out: madisonV2},
			{prefix: install, code: 100, out: "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)"}}, puller.HostDpkgLock},
		{"maintainer script", src, []step{{prefix: "apt-get -o DPkg::Lock::Timeout=300 install", code: 100,
			out: "dpkg: error processing package hello (--configure):\n installed hello package post-installation script subprocess returned error exit status 1\nE: Sub-process /usr/bin/dpkg returned an error code (1)"},
			{prefix: "apt-cache madison hello", out: madisonV2}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{steps: tt.steps}
			err := New(Config{SourcesList: tt.sources, Run: s.run}).Install(context.Background(), "hello", "2.0-1")
			if err == nil {
				t.Fatal("Install succeeded")
			}
			var hf *puller.HostFaultError
			switch {
			case tt.kind == "" && errors.As(err, &hf):
				t.Errorf("%v classified as a host fault %s", err, hf.Kind)
			case tt.kind != "" && (!errors.As(err, &hf) || hf.Kind != tt.kind):
				t.Errorf("%v: not a host fault of kind %s", err, tt.kind)
			}
		})
	}
}
