package instance_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/instance"
	"github.com/aptfleet/aptfleet/internal/testenv"
)

// baseRoot returns the cached Debian root the instances boot, or skips.
func baseRoot(t *testing.T) string { return testenv.TestRoot(t) }

const bootUnit = `[Unit]
Description=marks that units enabled before boot run at first boot

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'cat /etc/aptfleet-setup > /run/first-boot'

[Install]
WantedBy=multi-user.target
`

func TestInstance(t *testing.T) {
	base := baseRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "shared"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inst, err := instance.Boot(ctx, base, instance.Options{
		Dir:   dir,
		Binds: []string{hostDir + ":/mnt/host"},
		Files: map[string][]byte{"/etc/aptfleet-files/nested": []byte("from Files\n")},
		Setup: func(root string) error {
			if err := os.WriteFile(filepath.Join(root, "etc/aptfleet-setup"), []byte("setup ran\n"), 0o644); err != nil {
				return err
			}
			unit := filepath.Join(root, "etc/systemd/system/first-boot.service")
			if err := os.WriteFile(unit, []byte(bootUnit), 0o644); err != nil {
				return err
			}
			return os.Symlink("/etc/systemd/system/first-boot.service",
				filepath.Join(root, "etc/systemd/system/multi-user.target.wants/first-boot.service"))
		},
		Env: []string{"APTFLEET_TEST=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			inst.Close()
		}
	})
	if err := inst.WaitSystemRunning(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("systemd is PID 1 and the hostname is the name", func(t *testing.T) {
		out, err := inst.Shell(ctx, "cat /proc/1/comm; hostname")
		if err != nil {
			t.Fatal(err)
		}
		if want := "systemd\n" + inst.Name() + "\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})
	t.Run("setup files are there and enabled units ran at boot", func(t *testing.T) {
		got, err := inst.ReadFile(ctx, "/run/first-boot")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "setup ran\n" {
			t.Errorf("/run/first-boot = %q", got)
		}
		if got, err := inst.ReadFile(ctx, "/etc/aptfleet-files/nested"); err != nil || string(got) != "from Files\n" {
			t.Errorf("/etc/aptfleet-files/nested = %q, %v; want the file Options.Files wrote", got, err)
		}
	})
	t.Run("commands get a clean environment plus Options.Env", func(t *testing.T) {
		t.Setenv("APTFLEET_LEAK", "leaked")
		out, err := inst.Run(ctx, "env")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "APTFLEET_LEAK") || !strings.Contains(out, "APTFLEET_TEST=1\n") ||
			!strings.Contains(out, "DEBIAN_FRONTEND=noninteractive\n") {
			t.Errorf("environment inside:\n%s", out)
		}
	})
	t.Run("a failing command reports its output", func(t *testing.T) {
		_, err := inst.Shell(ctx, "echo broken-thing >&2; exit 3")
		if err == nil || !strings.Contains(err.Error(), "broken-thing") || !strings.Contains(err.Error(), "exit status 3") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("systemd-run works inside", func(t *testing.T) {
		out, err := inst.Run(ctx, "systemd-run", "--wait", "--pipe", "--quiet", "/bin/echo", "from a unit")
		if err != nil {
			t.Fatal(err)
		}
		if out != "from a unit\n" {
			t.Errorf("got %q", out)
		}
	})
	t.Run("bind mounts are shared both ways", func(t *testing.T) {
		got, err := inst.ReadFile(ctx, "/mnt/host/shared")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "from the host\n" {
			t.Errorf("got %q", got)
		}
		if _, err := inst.Shell(ctx, "echo back > /mnt/host/back"); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(hostDir, "back")); err != nil || string(b) != "back\n" {
			t.Errorf("host sees %q, %v", b, err)
		}
	})
	t.Run("WriteFile and CopyIn", func(t *testing.T) {
		if err := inst.WriteFile(ctx, "/etc/new/dir/file", []byte("hello\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tree := t.TempDir()
		os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
		os.WriteFile(filepath.Join(tree, "sub", "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755)
		os.WriteFile(filepath.Join(tree, "top"), []byte("top\n"), 0o644)
		if err := inst.CopyIn(ctx, tree, "/opt/tree"); err != nil {
			t.Fatal(err)
		}
		if err := inst.CopyIn(ctx, filepath.Join(tree, "top"), "/usr/local/share/renamed"); err != nil {
			t.Fatal(err)
		}
		out, err := inst.Shell(ctx, `stat -c '%a %U %n' /etc/new/dir/file /opt/tree/sub/run.sh /usr/local/share/renamed
/opt/tree/sub/run.sh; cat /etc/new/dir/file /usr/local/share/renamed`)
		if err != nil {
			t.Fatal(err)
		}
		want := "600 root /etc/new/dir/file\n755 root /opt/tree/sub/run.sh\n644 root /usr/local/share/renamed\nran\nhello\ntop\n"
		if out != want {
			t.Errorf("got:\n%s\nwant:\n%s", out, want)
		}
		if err := inst.CopyIn(ctx, tree, "relative"); err == nil {
			t.Error("relative destination accepted")
		}
	})
	t.Run("the base root is untouched", func(t *testing.T) {
		for _, p := range []string{"etc/aptfleet-setup", "etc/new", "opt/tree"} {
			if _, err := os.Stat(filepath.Join(base, p)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s in the base root: %v", p, err)
			}
		}
	})

	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if _, err := inst.Run(ctx, "true"); err == nil {
		t.Error("command ran after Close")
	}
	if _, err := os.Stat(filepath.Join(dir, "root", "etc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root left behind after Close: %v", err)
	}
	if err := inst.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConcurrentInstances boots two instances at once: tests in different
// packages do, so their names, roots and commands must stay apart.
func TestConcurrentInstances(t *testing.T) {
	base := baseRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	insts := make([]*instance.Instance, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = instance.Boot(ctx, base, instance.Options{})
			if errs[i] == nil {
				errs[i] = insts[i].WaitSystemRunning(ctx)
			}
		}()
	}
	wg.Wait()
	for _, inst := range insts {
		if inst != nil {
			t.Cleanup(func() { inst.Close() })
		}
	}
	for i := range insts {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
	}
	if insts[0].Name() == insts[1].Name() {
		t.Fatalf("both instances are named %s", insts[0].Name())
	}
	for _, inst := range insts {
		if err := inst.WriteFile(ctx, "/etc/whoami", []byte(inst.Name()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, inst := range insts {
		out, err := inst.Shell(ctx, "cat /etc/whoami; echo; hostname")
		if err != nil {
			t.Fatal(err)
		}
		if want := inst.Name() + "\n" + inst.Name() + "\n"; out != want {
			t.Errorf("%s: got %q, want %q", inst.Name(), out, want)
		}
	}
}

func TestBootErrors(t *testing.T) {
	_, err := instance.Boot(context.Background(), t.TempDir(), instance.Options{})
	if err == nil || !strings.Contains(err.Error(), "has no systemd") {
		t.Errorf("booting an empty directory: %v", err)
	}
	base := baseRoot(t)
	_, err = instance.Boot(context.Background(), base, instance.Options{Dir: t.TempDir(), Files: map[string][]byte{"etc/hosts": nil}})
	if err == nil || !strings.Contains(err.Error(), `file "etc/hosts": not an absolute path`) {
		t.Errorf("booting with a relative file path: %v", err)
	}
}

// TestUserDataAndKill: Options.UserData runs once at first boot before the
// system counts as running, and a failing script leaves it degraded naming
// the unit; Kill takes the instance down at once.
func TestUserDataAndKill(t *testing.T) {
	base := baseRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, tt := range []struct {
		name   string
		script string
		ok     bool
	}{
		{"succeeds", "#!/bin/sh\nsleep 1\necho ran > /run/user-data-ran\n", true},
		{"fails", "#!/bin/sh\necho about to fail\nexit 7\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := instance.Boot(ctx, base, instance.Options{Dir: t.TempDir(), UserData: []byte(tt.script)})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close()
			err = inst.WaitSystemRunning(ctx)
			if !tt.ok {
				if !errors.Is(err, instance.ErrDegraded) || !strings.Contains(err.Error(), instance.UserDataUnit) {
					t.Fatalf("WaitSystemRunning = %v, want degraded naming %s", err, instance.UserDataUnit)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := inst.ReadFile(ctx, "/run/user-data-ran"); err != nil || string(got) != "ran\n" {
				t.Fatalf("/run/user-data-ran = %q, %v: the user-data did not run before the system was running", got, err)
			}
			leader := inst.Leader()
			inst.Kill()
			if err := syscall.Kill(leader, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("PID 1 of the killed instance (host PID %d) still exists: %v", leader, err)
			}
			if _, err := inst.Run(ctx, "true"); err == nil {
				t.Error("a command ran in the killed instance")
			}
		})
	}
}
