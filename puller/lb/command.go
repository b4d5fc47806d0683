package lb

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/aptfleet/aptfleet/internal/tail"
	"github.com/aptfleet/aptfleet/internal/wait"
)

// CommandConfig holds the operator's drain and restore commands.
type CommandConfig struct {
	// Drain is run with Shell -c before the install. Required.
	Drain string
	// Restore is run with Shell -c once the host is healthy. Required.
	Restore string
	// Wait is how long to wait after the drain command succeeded, for the
	// load balancer's connections to end. Default 0.
	Wait time.Duration
	// Timeout of one command run. Default 5m.
	Timeout time.Duration
	// Shell runs the commands. Default "/bin/sh".
	Shell string
	// Env is added to the commands' inherited environment. Default none.
	Env []string
}

// Command drains by running shell commands.
type Command struct{ cfg CommandConfig }

// NewCommand validates cfg and returns the strategy.
func NewCommand(cfg CommandConfig) (*Command, error) {
	if strings.TrimSpace(cfg.Drain) == "" || strings.TrimSpace(cfg.Restore) == "" {
		return nil, fmt.Errorf("drain command: drain and restore are both required")
	}
	if cfg.Shell == "" {
		cfg.Shell = "/bin/sh"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	return &Command{cfg: cfg}, nil
}

// Drain runs the drain command, then waits Wait.
func (c *Command) Drain(ctx context.Context) error {
	if err := c.run(ctx, "drain", c.cfg.Drain); err != nil {
		return err
	}
	if err := wait.Sleep(ctx, c.cfg.Wait); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	return nil
}

// Restore runs the restore command.
func (c *Command) Restore(ctx context.Context) error {
	return c.run(ctx, "restore", c.cfg.Restore)
}

func (c *Command) run(ctx context.Context, what, script string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.cfg.Shell, "-c", script)
	cmd.Env = append(os.Environ(), c.cfg.Env...)
	// The shell's children die with it: kill the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return fmt.Errorf("%s command %q: %w: %s", what, script, err, tail.Lines(out.Bytes(), 3))
	}
	return nil
}
