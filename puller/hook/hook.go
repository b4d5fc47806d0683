// Package hook runs an app's validate hook: an operator's command, run with
// /bin/sh -c as the agent's user (root) after the restart and before the
// health check, under a timeout. Its combined output is captured (the last
// 4 KiB) for the deploy event and the journal; a non-zero exit, a signal or
// the timeout is a failure.
package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/aptfleet/aptfleet/puller"
)

// MaxOutput is how much of the hook's output is kept (its end).
const MaxOutput = 4096

// Command is a validate hook.
type Command struct {
	// Command is run with /bin/sh -c. Required.
	Command string
	// Timeout bounds the run; the hook's process group is killed after it.
	// Default 2m.
	Timeout time.Duration
	// Env is added to the agent's environment, after APP and VERSION (the
	// app and the version the host just moved to).
	Env []string
}

var _ puller.Validator = (*Command)(nil)

// Validate runs the hook for app at version (in its environment as APP and
// VERSION) and returns the tail of its combined output.
func (c *Command) Validate(ctx context.Context, app, version string) (string, error) {
	if strings.TrimSpace(c.Command) == "" {
		return "", errors.New("hook: empty command")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Command)
	cmd.Env = append(append(cmd.Environ(), "APP="+app, "VERSION="+version), c.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so the timeout also ends what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	text := tail(out.Bytes())
	switch {
	case err == nil:
		return text, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return text, fmt.Errorf("validate %q: timed out after %s", c.Command, timeout)
	case ctx.Err() != nil:
		return text, fmt.Errorf("validate %q: %w", c.Command, ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return text, fmt.Errorf("validate %q: %s", c.Command, exit.ProcessState)
	}
	return text, fmt.Errorf("validate %q: %w", c.Command, err)
}

func tail(b []byte) string {
	if len(b) > MaxOutput {
		b = b[len(b)-MaxOutput:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(bytes.ToValidUTF8(b, []byte("?"))), "\n")
}
