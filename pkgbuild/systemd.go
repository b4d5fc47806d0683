package pkgbuild

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
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
	if strings.ContainsAny(cmd, shellChars) {
		if err := checkShellCommand(cmd); err != nil {
			return err
		}
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

// specifiers escapes systemd's % specifiers in a unit setting's value.
var specifiers = strings.NewReplacer("%", "%%")

// systemdSpan writes d as a systemd time span: whole seconds, else
// milliseconds.
func systemdSpan(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d.Round(time.Millisecond)/time.Millisecond)
}

// hardening is the sandboxing `hardening: true` adds to every unit: what a
// web service listening on TCP, reading its files and writing to /var,
// /run and /tmp (a private one) tolerates. `systemd-analyze security`
// rates the units (tested on an instance). Not included, because common
// web runtimes break under them: MemoryDenyWriteExecute (JIT compilers),
// ProtectSystem=strict (apps writing under /var/lib without a
// StateDirectory), a stricter UMask (files shared with a web server),
// denying @resources (runtimes raising their own limits), PrivateNetwork
// and IPAddressDeny.
const hardening = `NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RemoveIPC=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM
`

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
		for _, f := range s.EnvironmentFiles {
			fmt.Fprintf(&b, "EnvironmentFile=-%s\n", specifiers.Replace(f))
		}
		o := s.ProcessOptions[p.Name]
		if o.WorkingDirectory != "" {
			fmt.Fprintf(&b, "WorkingDirectory=%s\n", specifiers.Replace(o.WorkingDirectory))
		}
		fmt.Fprintf(&b, "ExecStart=%s\n", execStart(p.Command))
		b.WriteString("Restart=on-failure\n")
		b.WriteString("RestartSec=1\n")
		if o.StopTimeout > 0 {
			fmt.Fprintf(&b, "TimeoutStopSec=%s\n", systemdSpan(o.StopTimeout))
		}
		limits := make([]string, 0, len(o.Limits))
		for k := range o.Limits {
			limits = append(limits, k)
		}
		sort.Strings(limits)
		for _, k := range limits {
			fmt.Fprintf(&b, "%s=%s\n", limitNames[k], o.Limits[k])
		}
		fmt.Fprintf(&b, "SyslogIdentifier=%s-%s\n", s.Name, p.Name)
		if s.Hardening {
			b.WriteString(hardening)
			if s.User != "root" {
				// A service user needs no capability; root keeps its own.
				b.WriteString("CapabilityBoundingSet=\n")
			}
		}
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
