package pkgbuild

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ParseProcfile reads Procfile lines "name: command". Blank lines and lines
// starting with '#' are skipped. file names the Procfile in messages.
func ParseProcfile(r io.Reader, file string) ([]Process, error) {
	var procs []Process
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		switch {
		case !ok:
			return nil, &Error{File: file, Line: n, Problem: fmt.Sprintf("%q is not \"name: command\"", line)}
		case !procPattern.MatchString(name):
			return nil, &Error{File: file, Line: n, Field: name, Problem: "invalid process name (use lowercase letters, digits, '-' and '_')"}
		case cmd == "":
			return nil, &Error{File: file, Line: n, Field: name, Problem: "no command"}
		}
		if prev, dup := seen[name]; dup {
			return nil, &Error{File: file, Line: n, Field: name, Problem: fmt.Sprintf("process already defined on line %d", prev)}
		}
		if err := checkCommand(cmd); err != nil {
			return nil, &Error{File: file, Line: n, Field: name, Problem: err.Error()}
		}
		seen[name] = n
		procs = append(procs, Process{Name: name, Command: cmd})
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: file, Problem: err.Error()}
	}
	if len(procs) == 0 {
		return nil, &Error{File: file, Problem: "no processes"}
	}
	return procs, nil
}
