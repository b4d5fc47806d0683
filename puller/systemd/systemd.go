// Package systemd restarts an application's systemd units with systemctl and
// checks that they stay active.
//
// An app packaged by pkgbuild has one <app>-<process>.service per process,
// grouped under <app>.target. The package does not restart them on upgrade:
// the agent does, after draining, so that it can health-check before the host
// takes traffic again.
package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/internal/tail"
	"github.com/aptfleet/aptfleet/puller"
)

var _ puller.Restarter = (*Restarter)(nil)

// Runner runs one program and returns its combined output; a non-zero exit
// is an error returned with the output.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// Exec is the Runner that starts programs on this host.
func Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = os.Environ()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// Config configures a Restarter.
type Config struct {
	// Systemctl is the systemctl program. Default "systemctl".
	Systemctl string
	// Units lists the units to restart per app. An app not listed gets
	// <app>.target and every <app>-*.service unit file installed.
	// Default empty.
	Units map[string][]string
	// Settle is how long the units must stay active after the restart before
	// it counts as done; a process that crashes right after starting is
	// caught here. Default 2s.
	Settle time.Duration
	// Run starts the programs. Default Exec.
	Run Runner
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Systemctl: "systemctl", Settle: 2 * time.Second, Run: Exec}
}

// Restarter restarts an app's units.
type Restarter struct{ cfg Config }

// ErrNoUnits: no unit of the app is installed.
var ErrNoUnits = errors.New("systemd: no units")

// New returns a Restarter; zero fields of cfg take their defaults.
func New(cfg Config) *Restarter {
	def := DefaultConfig()
	if cfg.Systemctl == "" {
		cfg.Systemctl = def.Systemctl
	}
	if cfg.Settle == 0 {
		cfg.Settle = def.Settle
	}
	if cfg.Run == nil {
		cfg.Run = def.Run
	}
	return &Restarter{cfg: cfg}
}

// Restart reloads systemd's unit files (an upgrade may have changed them),
// restarts the app's units in one transaction, and returns nil once every
// unit is active and still active Settle later.
func (r *Restarter) Restart(ctx context.Context, app string) error {
	if app == "" || strings.ContainsAny(app, " \t\n/*?[") || strings.HasPrefix(app, "-") {
		return fmt.Errorf("restart: bad app name %q", app)
	}
	if out, err := r.systemctl(ctx, "daemon-reload"); err != nil {
		return fmt.Errorf("systemctl daemon-reload: %w: %s", err, tail.Lines(out, 2))
	}
	units, err := r.Units(ctx, app)
	if err != nil {
		return err
	}
	args := append([]string{"restart"}, units...)
	if out, err := r.systemctl(ctx, args...); err != nil {
		return fmt.Errorf("systemctl restart %s: %w: %s", strings.Join(units, " "), err, tail.Lines(out, 2))
	}
	if err := r.active(ctx, units); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("restart %s: %w", app, ctx.Err())
	case <-time.After(r.cfg.Settle):
	}
	return r.active(ctx, units)
}

// Units returns the units Restart acts on for app, the target first.
func (r *Restarter) Units(ctx context.Context, app string) ([]string, error) {
	if u, ok := r.cfg.Units[app]; ok && len(u) > 0 {
		return u, nil
	}
	out, err := r.systemctl(ctx, "list-unit-files", "--no-legend", "--no-pager", app+".target", app+"-*.service")
	if err != nil && len(bytes.TrimSpace(out)) > 0 {
		// systemctl exits 1 when no file matches, with no output.
		return nil, fmt.Errorf("systemctl list-unit-files %s: %w: %s", app, err, tail.Lines(out, 2))
	}
	var units []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		// Template units (name@.service) cannot be restarted without an instance.
		if len(f) == 0 || strings.Contains(f[0], "@.") {
			continue
		}
		units = append(units, f[0])
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("restart %s: %w: neither %s.target nor %s-*.service is installed", app, ErrNoUnits, app, app)
	}
	slices.SortStableFunc(units, func(a, b string) int {
		return boolInt(!strings.HasSuffix(a, ".target")) - boolInt(!strings.HasSuffix(b, ".target"))
	})
	return units, nil
}

// active returns an error naming every unit that is not active.
func (r *Restarter) active(ctx context.Context, units []string) error {
	args := append([]string{"is-active"}, units...)
	out, err := r.systemctl(ctx, args...)
	states := strings.Fields(string(out))
	if len(states) != len(units) {
		return fmt.Errorf("systemctl is-active %s: %v: %s", strings.Join(units, " "), err, tail.Lines(out, 2))
	}
	var bad []string
	for i, s := range states {
		if s != "active" {
			bad = append(bad, units[i]+" is "+s)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("after restart: %s", strings.Join(bad, ", "))
	}
	return nil
}

func (r *Restarter) systemctl(ctx context.Context, args ...string) ([]byte, error) {
	return r.cfg.Run(ctx, r.cfg.Systemctl, args...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
