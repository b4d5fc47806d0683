// Package apt installs exact package versions on the host with apt-get and
// reads what is installed with dpkg-query.
//
// An install refreshes only the app's own source list, and only when apt does
// not know the wanted version yet; it waits for the dpkg lock instead of
// failing on it, recovers a dpkg run that was interrupted, allows downgrades
// (a rollback is a downgrade) and keeps locally changed conffiles.
package apt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/internal/tail"
	"github.com/aptfleet/aptfleet/puller"
)

var _ puller.Installer = (*Installer)(nil)

// Runner runs one program with extra environment variables (appended to the
// inherited environment) and returns its combined output. A non-zero exit is
// an error; the output is returned with it.
type Runner func(ctx context.Context, env []string, name string, args ...string) ([]byte, error)

// Exec is the Runner that starts programs on this host. A cancelled ctx
// keeps a program from starting, but one already running is left to finish:
// killing apt-get or dpkg half way leaves dpkg interrupted and the app
// half-installed, while apt's own DPkg::Lock::Timeout bounds the only
// open-ended wait.
func Exec(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s not started: %w", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Config configures an Installer.
type Config struct {
	// AptGet is the apt-get program. Default "apt-get".
	AptGet string
	// AptCache is the apt-cache program. Default "apt-cache".
	AptCache string
	// Dpkg is the dpkg program. Default "dpkg".
	Dpkg string
	// DpkgQuery is the dpkg-query program. Default "dpkg-query".
	DpkgQuery string
	// SourcesList is the apt source file of the app's repository (one-line
	// ".list" or deb822 ".sources"); it is the only source refreshed before an
	// install. Default "" (never run apt-get update).
	SourcesList string
	// LockTimeout is how long apt-get and dpkg wait for the dpkg lock held by
	// another run (unattended-upgrades, cloud-init). Default 5m.
	LockTimeout time.Duration
	// Options are extra "-o Name=Value" settings (without the "-o") given to
	// every apt-get and apt-cache run. Default none.
	Options []string
	// Run starts the programs. Default Exec.
	Run Runner
	// Logger receives one line per command run. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		AptGet:      "apt-get",
		AptCache:    "apt-cache",
		Dpkg:        "dpkg",
		DpkgQuery:   "dpkg-query",
		LockTimeout: 5 * time.Minute,
		Run:         Exec,
	}
}

// Installer installs and queries packages. It is safe for use by one deploy
// at a time; dpkg's own lock serialises it against everything else.
type Installer struct {
	cfg Config
	log *slog.Logger
}

// ErrNotAvailable: the wanted version is in none of apt's package lists,
// even after refreshing the app's source.
var ErrNotAvailable = errors.New("apt: version not available")

// New returns an Installer; zero fields of cfg take their defaults.
func New(cfg Config) *Installer {
	def := DefaultConfig()
	if cfg.AptGet == "" {
		cfg.AptGet = def.AptGet
	}
	if cfg.AptCache == "" {
		cfg.AptCache = def.AptCache
	}
	if cfg.Dpkg == "" {
		cfg.Dpkg = def.Dpkg
	}
	if cfg.DpkgQuery == "" {
		cfg.DpkgQuery = def.DpkgQuery
	}
	if cfg.LockTimeout == 0 {
		cfg.LockTimeout = def.LockTimeout
	}
	if cfg.Run == nil {
		cfg.Run = def.Run
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Installer{cfg: cfg, log: log}
}

// noninteractive is the environment of every apt-get and dpkg run.
var noninteractive = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "NEEDRESTART_MODE=l"}

// Installed returns the installed version of pkg, or "" when pkg is not
// installed (absent, removed with its conffiles kept, or half-installed).
func (i *Installer) Installed(ctx context.Context, pkg string) (string, error) {
	if err := checkName(pkg); err != nil {
		return "", err
	}
	out, err := i.cfg.Run(ctx, nil, i.cfg.DpkgQuery, "--show", "--showformat=${Status}\t${Version}\n", pkg)
	if err != nil {
		var ee *exec.ExitError
		// dpkg-query exits 1 for a package it has never heard of.
		if errors.As(err, &ee) && ee.ExitCode() == 1 && bytes.Contains(out, []byte("no packages found")) {
			return "", nil
		}
		return "", fmt.Errorf("dpkg-query %s: %w: %s", pkg, err, tail.Lines(out, 2))
	}
	status, version, ok := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if !ok {
		return "", fmt.Errorf("dpkg-query %s: unexpected output %q", pkg, tail.Lines(out, 1))
	}
	// Status is "want flag state", e.g. "install ok installed", "hold ok installed".
	if f := strings.Fields(status); len(f) == 3 && f[2] == "installed" {
		return version, nil
	}
	return "", nil
}

// Install installs exactly pkg=version, downgrading if needed, keeping
// changed conffiles, and verifies that dpkg then reports that version.
//
// Failures of the host rather than of the package are returned as a
// *puller.HostFaultError: the source file missing or unreadable, apt unable
// to refresh it or to find the version (HostSource, HostFetch), no space
// left (HostDiskFull), the dpkg lock not obtained in time (HostDpkgLock), an
// interrupted dpkg that could not be finished (HostDpkg). A failure of the
// package's own maintainer scripts is returned as it is.
func (i *Installer) Install(ctx context.Context, pkg, version string) error {
	return classify(i.install(ctx, pkg, version))
}

// classify wraps a host-side failure as a puller.HostFaultError by its
// kind; an error already classified, or one of the package's own, is kept.
func classify(err error) error {
	var hf *puller.HostFaultError
	if err == nil || errors.As(err, &hf) {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "No space left on device") || strings.Contains(msg, "You don't have enough free space"):
		return puller.HostFault(puller.HostDiskFull, err)
	case errors.Is(err, ErrNotAvailable) || strings.Contains(msg, "Failed to fetch") || strings.Contains(msg, "Unable to fetch") ||
		strings.Contains(msg, "Temporary failure resolving") || strings.Contains(msg, "Could not connect"):
		return puller.HostFault(puller.HostFetch, err)
	case strings.Contains(msg, "Could not get lock") || strings.Contains(msg, "waiting for the dpkg lock") || locked([]byte(msg)):
		return puller.HostFault(puller.HostDpkgLock, err)
	case strings.Contains(msg, "dpkg --configure -a") || strings.Contains(msg, "dpkg-query:") || interrupted([]byte(msg)):
		return puller.HostFault(puller.HostDpkg, err)
	}
	return err
}

func (i *Installer) install(ctx context.Context, pkg, version string) error {
	if err := checkName(pkg); err != nil {
		return err
	}
	if version == "" || strings.ContainsAny(version, " \t\n=/") {
		return fmt.Errorf("install %s: bad version %q", pkg, version)
	}
	want := pkg + "=" + version
	if err := i.recover(ctx); err != nil {
		return err
	}
	known, err := i.available(ctx, pkg, version)
	if err != nil {
		return err
	}
	if !known {
		if i.cfg.SourcesList == "" {
			return fmt.Errorf("install %s: %w (no source list to refresh)", want, ErrNotAvailable)
		}
		// Checked through the runner, which may run the programs on
		// another root than this process's (a container, a chroot).
		if _, err := i.cfg.Run(ctx, nil, "test", "-r", i.cfg.SourcesList); err != nil {
			return puller.HostFault(puller.HostSource, fmt.Errorf("install %s: source list %s is missing or unreadable", want, i.cfg.SourcesList))
		}
		if err := i.update(ctx); err != nil {
			return err
		}
		if known, err = i.available(ctx, pkg, version); err != nil {
			return err
		}
		if !known {
			return fmt.Errorf("install %s: %w after refreshing %s", want, ErrNotAvailable, i.cfg.SourcesList)
		}
	}
	out, err := i.aptGet(ctx, i.installArgs(want)...)
	if err != nil && interrupted(out) {
		// dpkg was interrupted between our check and apt's: recover once more.
		if rerr := i.configure(ctx); rerr != nil {
			return rerr
		}
		out, err = i.aptGet(ctx, i.installArgs(want)...)
	}
	if err != nil {
		return fmt.Errorf("apt-get install %s: %w: %s", want, err, tail.Lines(out, 3))
	}
	got, err := i.Installed(ctx, pkg)
	if err != nil {
		return err
	}
	if got != version {
		return fmt.Errorf("apt-get install %s: dpkg reports %q installed afterwards", want, got)
	}
	return nil
}

func (i *Installer) installArgs(want string) []string {
	return []string{"install", "--yes", "--allow-downgrades", "--no-install-recommends",
		"-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Options::=--force-confold",
		want}
}

// update refreshes only the app's source list, leaving every other list
// file in place.
func (i *Installer) update(ctx context.Context) error {
	out, err := i.aptGet(ctx, "update",
		"-o", "Dir::Etc::sourcelist="+i.cfg.SourcesList,
		"-o", "Dir::Etc::sourceparts=-",
		"-o", "APT::Get::List-Cleanup=0")
	if err != nil {
		return puller.HostFault(puller.HostFetch, fmt.Errorf("apt-get update %s: %w: %s", i.cfg.SourcesList, err, tail.Lines(out, 3)))
	}
	// apt-get update exits 0 on some fetch failures and only warns.
	if w := warnings(out); w != "" {
		return puller.HostFault(puller.HostFetch, fmt.Errorf("apt-get update %s: %s", i.cfg.SourcesList, w))
	}
	return nil
}

// available reports whether apt's lists contain pkg at version.
func (i *Installer) available(ctx context.Context, pkg, version string) (bool, error) {
	args := append(i.options(), "madison", pkg)
	out, err := i.cfg.Run(ctx, noninteractive, i.cfg.AptCache, args...)
	if err != nil {
		return false, fmt.Errorf("apt-cache madison %s: %w: %s", pkg, err, tail.Lines(out, 2))
	}
	// Lines: " hello | 1.4.0-1 | http://... staging/main amd64 Packages"
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) >= 2 && strings.TrimSpace(f[0]) == pkg && strings.TrimSpace(f[1]) == version {
			return true, nil
		}
	}
	return false, nil
}

// recover finishes a dpkg run that was interrupted (power loss, a killed
// agent), which otherwise makes every apt-get install fail: when a package
// is left unpacked, half-configured or awaiting triggers, it runs
// dpkg --configure -a.
func (i *Installer) recover(ctx context.Context) error {
	out, err := i.cfg.Run(ctx, noninteractive, i.cfg.DpkgQuery, "--show", "--showformat=${Status}\t${binary:Package}\n")
	if err != nil {
		return fmt.Errorf("dpkg-query: %w: %s", err, tail.Lines(out, 2))
	}
	var unfinished []string
	for _, line := range strings.Split(string(out), "\n") {
		status, pkg, _ := strings.Cut(line, "\t")
		if f := strings.Fields(status); len(f) == 3 && unfinishedStates[f[2]] {
			unfinished = append(unfinished, pkg+" ("+f[2]+")")
		}
	}
	if len(unfinished) == 0 {
		return nil
	}
	i.log.Warn("dpkg was interrupted; running dpkg --configure -a", "packages", strings.Join(unfinished, ", "))
	return i.configure(ctx)
}

// unfinishedStates are the dpkg states dpkg --configure -a completes.
var unfinishedStates = map[string]bool{
	"unpacked": true, "half-configured": true, "triggers-awaited": true, "triggers-pending": true,
}

// configure runs dpkg --configure -a, retrying while another process holds
// the dpkg lock, for at most LockTimeout.
func (i *Installer) configure(ctx context.Context) error {
	deadline := time.Now().Add(i.cfg.LockTimeout)
	for {
		out, err := i.cfg.Run(ctx, noninteractive, i.cfg.Dpkg, "--force-confdef", "--force-confold", "--configure", "-a")
		if err == nil {
			return nil
		}
		if !locked(out) || time.Now().After(deadline) {
			return fmt.Errorf("dpkg --configure -a: %w: %s", err, tail.Lines(out, 3))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dpkg --configure -a: waiting for the dpkg lock: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func (i *Installer) aptGet(ctx context.Context, args ...string) ([]byte, error) {
	full := append(i.options(), "-o", "DPkg::Lock::Timeout="+strconv.Itoa(int(i.cfg.LockTimeout/time.Second)))
	full = append(full, args...)
	i.log.Debug("run", "cmd", i.cfg.AptGet, "args", full)
	return i.cfg.Run(ctx, noninteractive, i.cfg.AptGet, full...)
}

func (i *Installer) options() []string {
	var args []string
	for _, o := range i.cfg.Options {
		args = append(args, "-o", o)
	}
	return args
}

func checkName(pkg string) error {
	if pkg == "" || strings.HasPrefix(pkg, "-") || strings.ContainsAny(pkg, " \t\n=/") {
		return fmt.Errorf("bad package name %q", pkg)
	}
	return nil
}

// interrupted reports apt's refusal to run after an interrupted dpkg.
func interrupted(out []byte) bool {
	return bytes.Contains(out, []byte("dpkg was interrupted"))
}

// locked reports dpkg's message for a lock held by another process.
func locked(out []byte) bool {
	return bytes.Contains(out, []byte("lock")) && (bytes.Contains(out, []byte("locked")) || bytes.Contains(out, []byte("held by")))
}

// warnings returns apt's "W:" and "E:" lines about fetching, joined.
func warnings(out []byte) string {
	var w []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") || (strings.HasPrefix(line, "W: ") &&
			(strings.Contains(line, "Failed to fetch") || strings.Contains(line, "could not be verified") ||
				strings.Contains(line, "is not signed") || strings.Contains(line, "Some index files failed"))) {
			w = append(w, strings.TrimSpace(line))
		}
	}
	return strings.Join(w, "; ")
}
