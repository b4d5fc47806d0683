// Package instance boots throwaway Debian machines with a real systemd as PID 1,
// for tests that must install packages, enable units and watch services the way
// an EC2 instance would.
//
// An Instance is a writable copy of a cached Debian root (an overlayfs over the
// read-only base when the kernel allows it, a `cp -a` copy otherwise), booted
// with `systemd-nspawn --register=no --keep-unit -b`. Commands run inside by
// entering the namespaces of the container's PID 1 with nsenter, so no
// machined registration is needed. The instance shares the machine's network:
// 127.0.0.1 inside is the machine's loopback, so each instance must be given
// its own ports.
//
// Typical use in a test (root, systemd-container and a base root needed):
//
//	inst, err := instance.Boot(ctx, os.Getenv("APTFLEET_TESTROOT"), instance.Options{Dir: t.TempDir()})
//	if err != nil { t.Fatal(err) }
//	t.Cleanup(func() { inst.Close() })
//	if err := inst.WaitSystemRunning(ctx); err != nil { t.Fatal(err) }
//	out, err := inst.Run(ctx, "dpkg", "-i", "/tmp/hello.deb")
//
// The base root is never written to.
package instance

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aptfleet/aptfleet/internal/tail"
)

// ErrDegraded is returned (wrapped, with the failed units) by WaitSystemRunning
// when the instance finished booting with failed units.
var ErrDegraded = errors.New("instance: system degraded")

// DefaultEnv is the environment commands run with inside an instance. The
// caller's environment is never passed in.
var DefaultEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C.UTF-8",
	"TERM=dumb",
	"DEBIAN_FRONTEND=noninteractive",
}

// Options configure Boot. The zero value works.
type Options struct {
	// Name is the machine name, also written to /etc/hostname. Default:
	// "aptfleet-" and 8 random hex digits. Instances running at the same time
	// need distinct names.
	Name string
	// Dir holds the instance's writable root, overlay work directories and
	// console.log. Default: a new directory under os.TempDir(), removed by Close.
	// A caller-provided Dir is emptied but not removed.
	Dir string
	// Binds are read-write bind mounts in systemd-nspawn syntax, "HOST:DIR" or
	// "PATH" (same path inside).
	Binds []string
	// BindsRO are read-only bind mounts, same syntax.
	BindsRO []string
	// Files are written into the root before boot (after the hostname, before
	// Setup): absolute path inside the instance -> content, mode 0644, parent
	// directories created. Files that must be there at first boot, such as
	// /etc/hosts or an app's conffile, go here.
	Files map[string][]byte
	// Setup, when set, runs after the root is prepared and before boot, with the
	// host path of the instance's root: the place to drop files or enable units
	// that must be there at first boot.
	Setup func(root string) error
	// UserData, when set, is a script the instance runs once at first boot,
	// as root, the way cloud-init's scripts-user stage runs EC2 user-data:
	// from /var/lib/cloud/instance/scripts/part-001, by a oneshot unit ordered
	// after network-online.target and wanted by multi-user.target, so
	// WaitSystemRunning returns once it finished ("degraded" when it failed).
	// Its output goes to the journal and the console.
	UserData []byte
	// Env is appended to DefaultEnv for every command run inside.
	Env []string
	// NspawnArgs are extra systemd-nspawn arguments (e.g. "--private-network").
	NspawnArgs []string
	// BootTimeout bounds how long Boot waits for the container's PID 1 to
	// appear. Default: 30s.
	BootTimeout time.Duration
	// StopTimeout bounds the orderly poweroff in Close before the container is
	// killed. Default: 30s.
	StopTimeout time.Duration
}

// Instance is a booted container. Its methods are safe for concurrent use.
type Instance struct {
	name    string
	dir     string
	ownDir  bool
	root    string
	overlay bool
	env     []string
	leader  int
	stopTO  time.Duration

	nspawn  *exec.Cmd
	cgroups []string      // the instance's own cgroups, removed on Close
	exited  chan struct{} // closed when nspawn exits
	waitErr error         // nspawn's exit status, valid after exited is closed

	closeOnce sync.Once
	closeErr  error
}

// Boot prepares a writable copy of baseRoot and boots it. It returns once the
// container's PID 1 runs; use WaitSystemRunning to wait for boot to finish.
// ctx bounds only the boot itself, not the instance's life: call Close.
func Boot(ctx context.Context, baseRoot string, opts Options) (inst *Instance, err error) {
	if fi, err := os.Stat(filepath.Join(baseRoot, "usr", "lib", "systemd", "systemd")); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("boot: base root %s has no systemd (build it with `make testroot`)", baseRoot)
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		return nil, fmt.Errorf("boot: systemd-nspawn not found (package systemd-container): %w", err)
	}
	if opts.Name == "" {
		opts.Name = "aptfleet-" + randomHex(4)
	}
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = 30 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 30 * time.Second
	}
	inst = &Instance{
		name:   opts.Name,
		dir:    opts.Dir,
		env:    append(append([]string(nil), DefaultEnv...), opts.Env...),
		stopTO: opts.StopTimeout,
		exited: make(chan struct{}),
	}
	if inst.dir == "" {
		if inst.dir, err = os.MkdirTemp("", "aptfleet-instance-"); err != nil {
			return nil, fmt.Errorf("boot %s: %w", opts.Name, err)
		}
		inst.ownDir = true
	}
	// The error returns below set inst to nil: clean up through a copy.
	created := inst
	defer func() {
		if err != nil {
			created.cleanupFiles()
		}
	}()
	if err := inst.prepareRoot(baseRoot); err != nil {
		return nil, fmt.Errorf("boot %s: %w", opts.Name, err)
	}
	if err := os.WriteFile(filepath.Join(inst.root, "etc", "hostname"), []byte(opts.Name+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("boot %s: %w", opts.Name, err)
	}
	for name, data := range opts.Files {
		if !filepath.IsAbs(name) {
			return nil, fmt.Errorf("boot %s: file %q: not an absolute path", opts.Name, name)
		}
		p := filepath.Join(inst.root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("boot %s: %w", opts.Name, err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, fmt.Errorf("boot %s: %w", opts.Name, err)
		}
	}
	if opts.Setup != nil {
		if err := opts.Setup(inst.root); err != nil {
			return nil, fmt.Errorf("boot %s: setup: %w", opts.Name, err)
		}
	}
	if opts.UserData != nil {
		if err := installUserData(inst.root, opts.UserData); err != nil {
			return nil, fmt.Errorf("boot %s: user-data: %w", opts.Name, err)
		}
	}

	args := []string{"--quiet", "--register=no", "--keep-unit", "--console=pipe",
		"--machine=" + opts.Name, "--directory=" + inst.root}
	for _, b := range opts.Binds {
		args = append(args, "--bind="+b)
	}
	for _, b := range opts.BindsRO {
		args = append(args, "--bind-ro="+b)
	}
	args = append(args, opts.NspawnArgs...)
	args = append(args, "--boot")

	console, err := os.Create(inst.ConsolePath())
	if err != nil {
		return nil, fmt.Errorf("boot %s: %w", opts.Name, err)
	}
	defer console.Close()
	// Each instance gets cgroups of its own: with --keep-unit and no systemd
	// on the host to hand out scopes, containers started from one process
	// would otherwise share a cgroup, and their systemds would create and
	// remove each other's /system.slice (units then fail "at step CGROUP").
	inst.cgroups = instanceCgroups(opts.Name)
	for _, d := range inst.cgroups {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("boot %s: cgroup: %w", opts.Name, err)
		}
	}
	const enter = `for d in $APTFLEET_CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec systemd-nspawn "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", enter, "sh"}, args...)...)
	cmd.Env = append(os.Environ(), "APTFLEET_CGROUPS="+strings.Join(inst.cgroups, " "))
	cmd.Stdout = console
	cmd.Stderr = console
	// nspawn stops the container on SIGTERM; keep it out of our process group
	// so a Ctrl-C on the test binary goes through Close.
	// If the test binary dies without Close (a timeout panic), nspawn gets
	// SIGTERM and powers the container off rather than leaving it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot %s: start systemd-nspawn: %w", opts.Name, err)
	}
	inst.nspawn = cmd
	go func() {
		inst.waitErr = cmd.Wait()
		close(inst.exited)
	}()

	bctx, cancel := context.WithTimeout(ctx, opts.BootTimeout)
	defer cancel()
	if inst.leader, err = inst.findLeader(bctx); err != nil {
		inst.stop()
		removeCgroups(inst.cgroups)
		return nil, fmt.Errorf("boot %s: %w; console: %s", opts.Name, err, inst.consoleTail())
	}
	return inst, nil
}

// prepareRoot makes inst.root a writable copy of base: an overlay mount when
// possible (instant, no copy), else a full `cp -a`.
func (inst *Instance) prepareRoot(base string) error {
	inst.root = filepath.Join(inst.dir, "root")
	upper, work := filepath.Join(inst.dir, "upper"), filepath.Join(inst.dir, "work")
	for _, d := range []string{inst.root, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	data := "lowerdir=" + base + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", inst.root, "overlay", 0, data); err == nil {
		inst.overlay = true
		return nil
	}
	os.RemoveAll(upper)
	os.RemoveAll(work)
	if err := os.Remove(inst.root); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", base, inst.root).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %w: %s", base, err, bytes.TrimSpace(out))
	}
	return nil
}

// findLeader waits for the container's PID 1 (the nspawn child whose PID in
// its own namespace is 1) and returns its PID on the host.
func (inst *Instance) findLeader(ctx context.Context) (int, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if pid := containerInit(inst.nspawn.Process.Pid); pid > 0 {
			return pid, nil
		}
		select {
		case <-inst.exited:
			return 0, fmt.Errorf("systemd-nspawn exited: %v", inst.waitErr)
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for the container's init: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// containerInit returns the host PID of the process under parent whose PID
// inside its namespace is 1, or 0.
func containerInit(parent int) int {
	for _, pid := range children(parent) {
		if nsPIDIsOne(pid) {
			return pid
		}
		for _, grand := range children(pid) {
			if nsPIDIsOne(grand) {
				return grand
			}
		}
	}
	return 0
}

func children(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func nsPIDIsOne(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}

// Name returns the machine name (also the hostname inside).
func (inst *Instance) Name() string { return inst.name }

// Root returns the host path of the instance's root file system. Files written
// there are visible inside (prefer CopyIn and WriteFile, which resolve paths
// as the instance does).
func (inst *Instance) Root() string { return inst.root }

// Leader returns the host PID of the container's PID 1 (systemd).
func (inst *Instance) Leader() int { return inst.leader }

// ConsolePath returns the file that receives systemd-nspawn's output.
func (inst *Instance) ConsolePath() string { return filepath.Join(inst.dir, "console.log") }

// Command returns a command that runs name with args inside the instance, as
// root, in all of the container's namespaces, with DefaultEnv plus
// Options.Env. Stdin, Stdout and Stderr may be set as for any exec.Cmd.
func (inst *Instance) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := []string{"--target", strconv.Itoa(inst.leader), "--mount", "--uts", "--ipc", "--net",
		"--pid", "--cgroup", "--root", "--wd", "--", "/usr/bin/env", "-i"}
	argv = append(argv, inst.env...)
	argv = append(argv, name)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd
}

// Run runs name with args inside the instance and returns its combined output.
// A failure's error names the command and carries the end of its output.
func (inst *Instance) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := inst.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("run %q in %s: %w: %s", strings.Join(append([]string{name}, args...), " "),
			inst.name, err, tail.Bytes(out, 2000))
	}
	return string(out), nil
}

// Shell runs script with /bin/sh -ec inside the instance and returns its
// combined output.
func (inst *Instance) Shell(ctx context.Context, script string) (string, error) {
	return inst.Run(ctx, "/bin/sh", "-ec", script)
}

// WaitSystemRunning waits until systemd inside finished booting. It returns
// nil when the system state is "running", an error wrapping ErrDegraded and
// listing the failed units when it is "degraded", and an error otherwise.
func (inst *Instance) WaitSystemRunning(ctx context.Context) error {
	for {
		out, _ := inst.Command(ctx, "systemctl", "is-system-running", "--wait").Output()
		state := strings.TrimSpace(string(out))
		switch state {
		case "running":
			return nil
		case "degraded":
			failed, _ := inst.Run(ctx, "systemctl", "--failed", "--no-legend", "--plain")
			// The failed units' last journal lines say why.
			why, _ := inst.Run(ctx, "journalctl", "--no-pager", "-o", "cat", "-n", "6", "-p", "warning", "-b")
			return fmt.Errorf("%w: %s: %s; journal: %s", ErrDegraded, inst.name,
				strings.Join(strings.Fields(failed), " "), strings.Join(strings.Fields(why), " "))
		case "stopping", "maintenance":
			return fmt.Errorf("instance %s: system is %s", inst.name, state)
		}
		// "initializing", "starting", or "offline" (no answer yet: the
		// manager is not reachable so early).
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance %s: waiting for boot (state %q): %w", inst.name, state, ctx.Err())
		case <-inst.exited:
			return fmt.Errorf("instance %s: container exited: %v; console: %s", inst.name, inst.waitErr, inst.consoleTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CopyIn copies the host file or directory src to dst inside the instance
// (dst is the full destination path, not its parent; a directory is merged
// into an existing one), keeping modes; the files are owned by root. Paths are
// resolved inside the instance, so its symlinks behave as for its programs.
func (inst *Instance) CopyIn(ctx context.Context, src, dst string) error {
	if !filepath.IsAbs(dst) {
		return fmt.Errorf("copy %s into %s: destination %q is not absolute", src, inst.name, dst)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("copy into %s: %w", inst.name, err)
	}
	// A directory is extracted into dst; a file is extracted as dst's base
	// name into dst's parent.
	dir, top := dst, "."
	if !fi.IsDir() {
		dir, top = filepath.Dir(dst), filepath.Base(dst)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, src, top)) }()
	cmd := inst.Command(ctx, "/bin/sh", "-ec", `mkdir -p "$1"; exec tar -x --no-same-owner -C "$1" -f -`, "sh", dir)
	cmd.Stdin = pr
	out, err := cmd.CombinedOutput()
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return fmt.Errorf("copy %s to %s:%s: %w: %s", src, inst.name, dst, err, tail.Bytes(out, 1000))
	}
	return nil
}

// writeTar writes src (a file or a tree) to w as a tar rooted at top.
func writeTar(w io.Writer, src, top string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join(top, rel))
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// WriteFile writes data to path inside the instance with mode perm, creating
// parent directories.
func (inst *Instance) WriteFile(ctx context.Context, path string, data []byte, perm fs.FileMode) error {
	cmd := inst.Command(ctx, "/bin/sh", "-ec", `mkdir -p "$(dirname "$1")"; cat > "$1.aptfleet-tmp"; chmod "$2" "$1.aptfleet-tmp"; mv "$1.aptfleet-tmp" "$1"`,
		"sh", path, fmt.Sprintf("%o", perm.Perm()))
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("write %s in %s: %w: %s", path, inst.name, err, tail.Bytes(out, 1000))
	}
	return nil
}

// ReadFile returns the content of path inside the instance.
func (inst *Instance) ReadFile(ctx context.Context, path string) ([]byte, error) {
	cmd := inst.Command(ctx, "cat", "--", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w: %s", path, inst.name, err, tail.Bytes(stderr.Bytes(), 500))
	}
	return out, nil
}

// Close powers the instance off (an orderly systemd shutdown, then a kill
// after Options.StopTimeout), unmounts and removes its root. It is safe to
// call more than once; later calls return the first result.
func (inst *Instance) Close() error {
	inst.closeOnce.Do(func() {
		inst.stop()
		inst.closeErr = inst.cleanupFiles()
	})
	return inst.closeErr
}

// Kill cuts the instance's power: SIGKILL to its PID 1, which takes every
// process inside with it (nothing shuts down in order, no service stops
// cleanly); systemd-nspawn then reaps it and exits. It returns once the
// container is gone; Close still removes its files.
func (inst *Instance) Kill() {
	if inst.nspawn == nil || inst.nspawn.Process == nil {
		return
	}
	if inst.leader > 0 {
		_ = syscall.Kill(inst.leader, syscall.SIGKILL)
	}
	select {
	case <-inst.exited:
	case <-time.After(10 * time.Second):
		_ = inst.nspawn.Process.Kill()
		<-inst.exited
	}
}

// stop halts the container and waits for systemd-nspawn to exit.
func (inst *Instance) stop() {
	if inst.nspawn == nil || inst.nspawn.Process == nil {
		return
	}
	select {
	case <-inst.exited:
		return
	default:
	}
	// SIGTERM makes systemd-nspawn ask the container's systemd to power off.
	_ = inst.nspawn.Process.Signal(syscall.SIGTERM)
	select {
	case <-inst.exited:
		return
	case <-time.After(inst.stopTO):
	}
	_ = inst.nspawn.Process.Kill()
	if inst.leader > 0 {
		_ = syscall.Kill(inst.leader, syscall.SIGKILL)
	}
	<-inst.exited
}

// cleanupFiles unmounts the overlay and removes the instance's files.
func (inst *Instance) cleanupFiles() error {
	var errs []error
	removeCgroups(inst.cgroups)
	if inst.overlay {
		if err := syscall.Unmount(inst.root, 0); err != nil {
			// Something inside still holds it (a bind mount a test left open):
			// detach it so the files can go.
			if err2 := syscall.Unmount(inst.root, syscall.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", inst.root, err))
			}
		}
		inst.overlay = false
	}
	if inst.ownDir {
		if err := os.RemoveAll(inst.dir); err != nil {
			errs = append(errs, err)
		}
	} else if inst.dir != "" {
		for _, name := range []string{"root", "upper", "work", "console.log"} {
			if err := os.RemoveAll(filepath.Join(inst.dir, name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("close %s: %w", inst.name, errors.Join(errs...))
	}
	return nil
}

// UserDataUnit is the oneshot unit that runs Options.UserData at first boot.
const UserDataUnit = "aptfleet-user-data.service"

const userDataUnit = `[Unit]
Description=EC2 user-data (as cloud-init's scripts-user runs it)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/var/lib/cloud/instance/scripts/part-001
RemainAfterExit=yes
TimeoutStartSec=10min
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
`

// installUserData writes the script and its unit into root and enables the
// unit.
func installUserData(root string, script []byte) error {
	scripts := filepath.Join(root, "var/lib/cloud/instance/scripts")
	units := filepath.Join(root, "etc/systemd/system")
	wants := filepath.Join(units, "multi-user.target.wants")
	for _, d := range []string{scripts, wants} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(scripts, "part-001"), script, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(units, UserDataUnit), []byte(userDataUnit), 0o644); err != nil {
		return err
	}
	return os.Symlink("/etc/systemd/system/"+UserDataUnit, filepath.Join(wants, UserDataUnit))
}

// consoleTail returns the end of the console log, for error messages.
func (inst *Instance) consoleTail() string {
	b, _ := os.ReadFile(inst.ConsolePath())
	return tail.Bytes(b, 2000)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// instanceCgroups returns the cgroup directories the instance named name is
// started in: one under each hierarchy systemd inside uses (the v1
// name=systemd and the unified hierarchy of a hybrid host, or the v2 root).
func instanceCgroups(name string) []string {
	var dirs []string
	for _, h := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err == nil {
			dirs = append(dirs, filepath.Join(h, "aptfleet-instances", name))
			if h == "/sys/fs/cgroup" {
				break
			}
		}
	}
	// On a hybrid host /sys/fs/cgroup is a tmpfs without cgroup.procs; on a
	// v2 host the first two do not exist.
	return dirs
}

// removeCgroups removes the instance's cgroups, deepest first, once its
// processes are gone.
func removeCgroups(dirs []string) {
	for _, d := range dirs {
		var all []string
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			os.Remove(all[i])
		}
	}
}
