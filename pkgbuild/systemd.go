package pkgbuild

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// UnitDir is where the package installs its systemd units.
const UnitDir = "/lib/systemd/system"

// Unit is a generated systemd unit file.
type Unit struct {
	Name    string // e.g. "hello-web.service"
	Content []byte
}

// shellChars are characters that need a shell; a command containing any of
// them runs under /bin/sh -c. '$' is not among them: systemd expands $VAR and
// ${VAR} from the environment itself.
const shellChars = "|&;<>()`*?'\"\\"

// checkCommand checks a process command can become an ExecStart line.
func checkCommand(cmd string) error {
	if strings.ContainsAny(cmd, "\n\r\x00") {
		return errors.New("command spans more than one line")
	}
	prog := strings.Fields(cmd)[0]
	if strings.ContainsAny(prog, shellChars) {
		return nil // runs under /bin/sh -c
	}
	if strings.Contains(prog, "/") && !strings.HasPrefix(prog, "/") {
		return fmt.Errorf("%q: start the command with an absolute path or a program name found on PATH (the package's files live at their installed paths)", prog)
	}
	return nil
}

// execStart renders a process command as an ExecStart value.
func execStart(cmd string) string {
	cmd = strings.TrimSpace(cmd)
	if strings.ContainsAny(cmd, shellChars) {
		// systemd unquotes "..." with C escapes, then expands $ and %;
		// double them so the shell sees them.
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`, `%`, `%%`).Replace("exec " + cmd)
		return `/bin/sh -c "` + q + `"`
	}
	return strings.ReplaceAll(cmd, "%", "%%")
}

// TargetName returns the unit grouping the package's processes, <name>.target.
func (s *Spec) TargetName() string { return s.Name + ".target" }

// ServiceName returns the unit of process p, <name>-<p>.service.
func (s *Spec) ServiceName(p string) string { return s.Name + "-" + p + ".service" }

// EnvironmentFile returns the path of the package's environment file.
func (s *Spec) EnvironmentFile() string { return "/etc/default/" + s.Name }

// Units returns the generated systemd units: one service per process and the
// target grouping them, in that order. A spec without processes has none.
func (s *Spec) Units() []Unit {
	if len(s.procs) == 0 {
		return nil
	}
	var units []Unit
	for _, p := range s.procs {
		var b strings.Builder
		b.WriteString("[Unit]\n")
		fmt.Fprintf(&b, "Description=%s: %s process\n", s.Name, p.Name)
		if s.Homepage != "" {
			fmt.Fprintf(&b, "Documentation=%s\n", s.Homepage)
		}
		fmt.Fprintf(&b, "PartOf=%s\n", s.TargetName())
		b.WriteString("After=network.target\n")
		b.WriteString("\n[Service]\n")
		b.WriteString("Type=exec\n")
		if s.User != "root" {
			fmt.Fprintf(&b, "User=%s\nGroup=%s\n", s.User, s.User)
		}
		fmt.Fprintf(&b, "EnvironmentFile=%s\n", s.EnvironmentFile())
		fmt.Fprintf(&b, "ExecStart=%s\n", execStart(p.Command))
		b.WriteString("Restart=on-failure\n")
		b.WriteString("RestartSec=1\n")
		fmt.Fprintf(&b, "SyslogIdentifier=%s-%s\n", s.Name, p.Name)
		b.WriteString("\n[Install]\n")
		fmt.Fprintf(&b, "WantedBy=%s\n", s.TargetName())
		units = append(units, Unit{Name: s.ServiceName(p.Name), Content: []byte(b.String())})
	}
	var b strings.Builder
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=%s: all processes\n", s.Name)
	if s.Homepage != "" {
		fmt.Fprintf(&b, "Documentation=%s\n", s.Homepage)
	}
	b.WriteString("\n[Install]\n")
	b.WriteString("WantedBy=multi-user.target\n")
	units = append(units, Unit{Name: s.TargetName(), Content: []byte(b.String())})
	return units
}

// EnvironmentFileContent returns /etc/default/<name>: the spec's environment,
// sorted, in a syntax both systemd's EnvironmentFile= and /bin/sh read.
func (s *Spec) EnvironmentFileContent() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Environment of the %s services (systemd EnvironmentFile=).\n", s.Name)
	b.WriteString("# Local changes are kept on upgrade; restart the services to apply them.\n")
	keys := make([]string, 0, len(s.Environment))
	for k := range s.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, envQuote(s.Environment[k]))
	}
	return []byte(b.String())
}

// envQuote double-quotes v when it holds anything but safe characters,
// escaping the characters both sh and systemd treat specially in quotes.
func envQuote(v string) string {
	safe := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,@+=", r)) {
			safe = false
			break
		}
	}
	if safe {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`).Replace(v) + `"`
}
