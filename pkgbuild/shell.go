package pkgbuild

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// shellPrefix is the start of a syntax error from dash ("sh: 3: ...") or
// bash as sh ("sh: -c: line 3: ...").
var shellPrefix = regexp.MustCompile(`^\S+: (?:-c: )?(?:line )?(\d+): `)

// shellSyntax checks script with `/bin/sh -n`, the shell the instance runs
// it with (dash on Debian). It returns the line and the message of the
// first syntax error, or line 0 and "" when there is none.
func shellSyntax(script string) (line int, msg string, err error) {
	var stderr bytes.Buffer
	cmd := exec.Command("/bin/sh", "-n", "-c", script)
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err == nil {
		return 0, "", nil
	}
	if !errors.As(err, &exit) {
		return 0, "", fmt.Errorf("sh -n: %w", err)
	}
	out := strings.TrimSpace(stderr.String())
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	if m := shellPrefix.FindStringSubmatch(out); m != nil {
		line, _ = strconv.Atoi(m[1])
		out = out[len(m[0]):]
	}
	if out == "" {
		out = "syntax error"
	}
	return max(line, 1), out, nil
}

// checkShellCommand checks a process command that runs under /bin/sh -c
// parses; the unit runs it as "exec " + cmd.
func checkShellCommand(cmd string) error {
	_, msg, err := shellSyntax("exec " + cmd)
	if err != nil {
		return err
	}
	if msg != "" {
		return errors.New("sh -n: " + msg)
	}
	return nil
}
