package pkgbuild

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/aptfleet/aptfleet/internal/debian"
)

// Spec is a package description, read from package.yaml. Paths in it are
// relative to the directory of the file it was read from.
type Spec struct {
	// Name is the Debian package name (required): lowercase letters, digits,
	// '+', '-' and '.', starting with a letter or digit.
	Name string `yaml:"name"`
	// Version is the Debian version, e.g. "1.4.0-1". Default: empty, and the
	// build command derives it from `git describe` (or --version).
	Version string `yaml:"version"`
	// Arch is the Debian architecture. Default: "amd64".
	Arch string `yaml:"arch"`
	// Maintainer is "Name <email>" (required).
	Maintainer string `yaml:"maintainer"`
	// Description is a one-line synopsis, optionally followed by lines of
	// long description (required).
	Description string `yaml:"description"`
	// Homepage is the project's URL. Default: none.
	Homepage string `yaml:"homepage"`
	// Section is the archive section. Default: "misc".
	Section string `yaml:"section"`
	// Priority is the Debian priority. Default: "optional".
	Priority string `yaml:"priority"`
	// License names the license in the generated copyright file. Default:
	// "proprietary". Ignored when Copyright is set.
	License string `yaml:"license"`
	// Copyright is a file installed as /usr/share/doc/<name>/copyright.
	// Default: one generated from Maintainer, Homepage and License.
	Copyright string `yaml:"copyright"`
	// Depends, Recommends, Conflicts, Replaces and Provides are Debian
	// relationship fields, one relation per item ("libc6 (>= 2.36)").
	Depends    []string `yaml:"depends"`
	Recommends []string `yaml:"recommends"`
	Conflicts  []string `yaml:"conflicts"`
	Replaces   []string `yaml:"replaces"`
	Provides   []string `yaml:"provides"`
	// Files are installed as they are; a directory source installs its tree.
	Files []File `yaml:"files"`
	// ConfigFiles are installed as conffiles: dpkg keeps local changes.
	ConfigFiles []File `yaml:"config_files"`
	// Procfile is a Procfile ("name: command" lines) whose processes become
	// systemd units. Default: none. Exclusive with Processes.
	Procfile string `yaml:"procfile"`
	// Processes maps a process name to its command; each becomes the unit
	// <name>-<process>.service. Exclusive with Procfile.
	Processes map[string]string `yaml:"processes"`
	// User is the system user the processes run as, created in postinst
	// (with a group of the same name). Default: Name. "root" runs them as
	// root and creates no user.
	User string `yaml:"user"`
	// Environment is written to /etc/default/<name> (a conffile), which every
	// unit reads.
	Environment map[string]string `yaml:"environment"`
	// Hooks are shell scripts run from the maintainer scripts.
	Hooks Hooks `yaml:"hooks"`
	// LintianOverrides are lintian tags (with their context, as lintian
	// prints them: "statically-linked-binary [usr/bin/hello]") accepted for
	// this package, shipped as /usr/share/lintian/overrides/<name>.
	LintianOverrides []string `yaml:"lintian_overrides"`
	// ProcessOptions are unit options per process, keyed by process name.
	// Default: none.
	ProcessOptions map[string]ProcessOptions `yaml:"process_options"`
	// Hardening adds the systemd sandboxing options a web service
	// tolerates to every unit (see Hardening below). Default: false.
	Hardening bool `yaml:"hardening"`
	// EnvironmentFiles are extra environment files every unit reads after
	// /etc/default/<name>, each optional (EnvironmentFile=-PATH): secrets
	// written on the instance outside the package. Default: none.
	EnvironmentFiles []string `yaml:"environment_files"`
	// Compression of the package's data: "gzip" (level 9), "gzip:N" (N 1-9),
	// "xz", "zstd" (about zstd level 7), "zstd:N" (N 1-22, in nfpm's four
	// zstd speed steps), or "none". Default: "gzip".
	Compression string `yaml:"compression"`

	// ModTime is the time stamped on every file and archive member. Zero
	// means the current time; the build command sets it from
	// SOURCE_DATE_EPOCH, which makes builds byte-for-byte reproducible.
	ModTime time.Time `yaml:"-"`

	file string // the file the spec was read from, for messages
	dir  string // the directory relative paths start from
	// procs is the ordered, validated process list (from Procfile or Processes).
	procs []Process
}

// File maps a path of the build tree into the package.
type File struct {
	// Src is the file or directory in the build tree (required).
	Src string `yaml:"src"`
	// Dst is the absolute path in the package (required).
	Dst string `yaml:"dst"`
	// Mode is the file mode, octal (0755). Default: the source's mode without
	// group and other write bits. 0 is an error.
	Mode fileMode `yaml:"mode"`
	// AllowUnsafeMode permits this entry a mode (given, or the source's) with
	// setuid, setgid or sticky bits or group or other write. Default: false,
	// and such a mode is refused.
	AllowUnsafeMode bool `yaml:"allow_unsafe_mode"`
	// Owner and Group own the installed file (or tree), set by postinst on
	// configure. Default: root, except a config file under /etc/<name>/ of a
	// package with a service user, whose group is that user (so a 0640
	// conffile is readable by its service and writable only by root).
	Owner string `yaml:"owner"`
	Group string `yaml:"group"`
}

// ProcessOptions are the unit options of one process.
type ProcessOptions struct {
	// WorkingDirectory is the absolute directory the process starts in
	// (WorkingDirectory=). Default: none (systemd starts it in /).
	WorkingDirectory string `yaml:"working_directory"`
	// Limits are resource limits, systemd's Limit*= by lowercase name
	// without "Limit" (nofile: 65536, core: "0:infinity"). Default: none.
	Limits map[string]string `yaml:"limits"`
	// StopTimeout is how long systemd waits after SIGTERM before SIGKILL
	// (TimeoutStopSec=). Default: systemd's (90s).
	StopTimeout time.Duration `yaml:"stop_timeout"`
}

// Hooks are package-provided shell scripts, run (in a subshell, with the
// maintainer script's arguments) by the generated maintainer scripts.
type Hooks struct {
	// PreInst runs before the package is unpacked.
	PreInst string `yaml:"preinst"`
	// PostInst runs after the service user exists and before the units are
	// enabled and (on first install) started.
	PostInst string `yaml:"postinst"`
	// PreRm runs after the units are stopped on removal.
	PreRm string `yaml:"prerm"`
	// PostRm runs after the generated clean-up.
	PostRm string `yaml:"postrm"`
}

// Process is one long-running process of the package.
type Process struct {
	Name    string
	Command string
}

// fileMode is an octal file mode in YAML ("0755" or 0755).
type fileMode uint32

func (m *fileMode) UnmarshalYAML(n *yaml.Node) error {
	var v uint64
	if _, err := fmt.Sscanf(strings.TrimPrefix(n.Value, "0o"), "%o", &v); err != nil || v > 0o7777 || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: mode %q is not an octal file mode", n.Line, n.Value)
	}
	if v == 0 {
		return fmt.Errorf("line %d: mode %q grants no permission at all (leave mode out to keep the source's)", n.Line, n.Value)
	}
	*m = fileMode(v)
	return nil
}

// unsafeBits names the bits of mode a package should not set without
// saying so: setuid, setgid, sticky, group write, other write.
func unsafeBits(mode uint32) string {
	var names []string
	for _, b := range []struct {
		bit  uint32
		name string
	}{{0o4000, "setuid"}, {0o2000, "setgid"}, {0o1000, "sticky"}, {0o020, "group write"}, {0o002, "other write"}} {
		if mode&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// octalMode is the permission and special bits of an fs.FileMode, as chmod
// writes them.
func octalMode(m os.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// Error is a problem with the spec or one of the files it names. Its message
// names the file, the field and the problem on one line.
type Error struct {
	File    string // the spec, Procfile or hook file
	Line    int    // 0 when unknown
	Field   string // e.g. "files[2].src"; empty when the file itself is bad
	Problem string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Problem
	}
	return loc + ": " + e.Field + ": " + e.Problem
}

// ErrInvalid is matched (errors.Is) by every *Error.
var ErrInvalid = errors.New("pkgbuild: invalid package spec")

func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Parse reads a spec from r. file names it in messages; relative paths in the
// spec are resolved against file's directory. Parse validates everything but
// the version, which may be set afterwards (see Spec.SetVersion).
func Parse(r io.Reader, file string) (*Spec, error) {
	s := &Spec{file: file, dir: filepath.Dir(file)}
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Problem: "empty spec"}
		}
		return nil, yamlError(file, err)
	}
	if err := s.applyDefaults(); err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if s.Version != "" {
		if err := s.SetVersion(s.Version); err != nil {
			return nil, err
		}
	}
	return s, nil
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)
var yamlUnknown = regexp.MustCompile(`^field (\S+) not found in type .*$`)

// yamlError turns a yaml.v3 error into a one-line *Error.
func yamlError(file string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &Error{File: file, Problem: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &e.Line)
		e.Problem = m[2]
		if u := yamlUnknown.FindStringSubmatch(m[2]); u != nil {
			e.Field, e.Problem = u[1], "unknown field"
		}
	}
	return e
}

func (s *Spec) applyDefaults() error {
	if s.Arch == "" {
		s.Arch = "amd64"
	}
	if s.Section == "" {
		s.Section = "misc"
	}
	if s.Priority == "" {
		s.Priority = "optional"
	}
	if s.License == "" {
		s.License = "proprietary"
	}
	if s.User == "" {
		s.User = s.Name
	}
	if s.Compression == "" {
		s.Compression = "gzip"
	}
	return nil
}

var (
	procPattern        = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	userPattern        = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	envKeyPattern      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	maintPattern       = regexp.MustCompile(`^[^<>]+ <[^<>@\s]+@[^<>\s]+>$`)
	relationChars      = regexp.MustCompile(`^[a-z0-9][a-z0-9+.:-]*( *\([<>=]{1,2} *[A-Za-z0-9.+~:-]+\))?( *\| *[a-z0-9][a-z0-9+.:-]*( *\([<>=]{1,2} *[A-Za-z0-9.+~:-]+\))?)*$`)
	compressionPattern = regexp.MustCompile(`^(gzip(:[1-9])?|xz|zstd(:([1-9]|1[0-9]|2[0-2]))?|none)$`)
)

func (s *Spec) bad(field, format string, args ...any) error {
	return &Error{File: s.file, Field: field, Problem: fmt.Sprintf(format, args...)}
}

// validate checks every field but Version, reads the Procfile and checks
// that every named file exists.
func (s *Spec) validate() error {
	switch {
	case s.Name == "":
		return s.bad("name", "missing (the package name is required)")
	case !debian.ValidPackageName(s.Name):
		return s.bad("name", "%s", debian.CheckPackageName(s.Name))
	case !debian.ValidArch(s.Arch):
		return s.bad("arch", "%s", debian.CheckArch(s.Arch))
	case s.Maintainer == "":
		return s.bad("maintainer", "missing (want \"Name <email>\")")
	case !maintPattern.MatchString(s.Maintainer):
		return s.bad("maintainer", "%q is not of the form \"Name <email>\"", s.Maintainer)
	case strings.TrimSpace(s.Description) == "":
		return s.bad("description", "missing (a one-line synopsis is required)")
	case len(firstLine(s.Description)) > 80:
		return s.bad("description", "the first line (synopsis) is %d characters; at most 80", len(firstLine(s.Description)))
	case !userPattern.MatchString(s.User):
		return s.bad("user", "%q is not a valid user name", s.User)
	case !compressionPattern.MatchString(s.Compression):
		return s.bad("compression", "%q is not one of gzip, gzip:1-9, xz, zstd, zstd:1-22, none", s.Compression)
	case s.Procfile != "" && len(s.Processes) > 0:
		return s.bad("processes", "set either procfile or processes, not both")
	}
	for _, f := range []struct{ field, value string }{{"name", s.Name}, {"version", s.Version}, {"arch", s.Arch},
		{"maintainer", s.Maintainer}, {"homepage", s.Homepage}, {"section", s.Section}, {"priority", s.Priority},
		{"license", s.License}, {"user", s.User}, {"procfile", s.Procfile}, {"copyright", s.Copyright}} {
		if i := strings.IndexFunc(f.value, unicode.IsControl); i >= 0 {
			return s.bad(f.field, "contains the control character %q (a value here must fit on one line)", f.value[i])
		}
	}
	if i := strings.IndexFunc(s.Description, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }); i >= 0 {
		return s.bad("description", "contains the control character %q", s.Description[i])
	}
	if err := s.loadProcesses(); err != nil {
		return err
	}
	for field, rels := range map[string][]string{"depends": s.Depends, "recommends": s.Recommends,
		"conflicts": s.Conflicts, "replaces": s.Replaces, "provides": s.Provides} {
		for i, r := range rels {
			if !relationChars.MatchString(strings.TrimSpace(r)) {
				return s.bad(fmt.Sprintf("%s[%d]", field, i), "%q is not a package relation like \"libc6 (>= 2.36)\"", r)
			}
		}
	}
	dsts := map[string]string{}
	for _, list := range []struct {
		field string
		files []File
	}{{"files", s.Files}, {"config_files", s.ConfigFiles}} {
		for i, f := range list.files {
			field := fmt.Sprintf("%s[%d]", list.field, i)
			if err := s.checkFile(field, f, list.field == "config_files"); err != nil {
				return err
			}
			dst := filepath.Clean(f.Dst)
			if prev, ok := dsts[dst]; ok {
				return s.bad(field+".dst", "%s is already installed by %s", f.Dst, prev)
			}
			dsts[dst] = field
		}
	}
	for _, reserved := range s.generatedPaths() {
		if prev, ok := dsts[reserved]; ok {
			return s.bad(prev+".dst", "%s is generated by pkgbuild; set it through the spec instead", reserved)
		}
	}
	if err := s.checkCopyright(); err != nil {
		return err
	}
	for i, o := range s.LintianOverrides {
		if strings.TrimSpace(o) == "" || strings.ContainsAny(o, "\n") {
			return s.bad(fmt.Sprintf("lintian_overrides[%d]", i), "want one tag per item, like \"statically-linked-binary [usr/bin/%s]\"", s.Name)
		}
	}
	for k := range s.Environment {
		if !envKeyPattern.MatchString(k) {
			return s.bad("environment", "%q is not a valid variable name", k)
		}
		if strings.ContainsAny(s.Environment[k], "\n\x00") {
			return s.bad("environment."+k, "value contains a newline")
		}
	}
	for field, hook := range map[string]string{"hooks.preinst": s.Hooks.PreInst, "hooks.postinst": s.Hooks.PostInst,
		"hooks.prerm": s.Hooks.PreRm, "hooks.postrm": s.Hooks.PostRm} {
		if hook == "" {
			continue
		}
		if fi, err := os.Stat(s.path(hook)); err != nil || !fi.Mode().IsRegular() {
			return s.bad(field, "%s does not exist or is not a file", hook)
		}
		b, err := os.ReadFile(s.path(hook))
		if err != nil {
			return s.bad(field, "%v", err)
		}
		line, msg, err := shellSyntax(string(b))
		if err != nil {
			return s.bad(field, "%s: %v", hook, err)
		}
		if msg != "" {
			return s.bad(field, "%s: sh -n: line %d: %s", hook, line, msg)
		}
	}
	return s.checkUnitOptions()
}

// limitNames maps the keys of process_options.*.limits to systemd's
// directives.
var limitNames = map[string]string{
	"as": "LimitAS", "core": "LimitCORE", "cpu": "LimitCPU", "data": "LimitDATA", "fsize": "LimitFSIZE",
	"locks": "LimitLOCKS", "memlock": "LimitMEMLOCK", "msgqueue": "LimitMSGQUEUE", "nice": "LimitNICE",
	"nofile": "LimitNOFILE", "nproc": "LimitNPROC", "rss": "LimitRSS", "rtprio": "LimitRTPRIO",
	"rttime": "LimitRTTIME", "sigpending": "LimitSIGPENDING", "stack": "LimitSTACK",
}

// limitValue is a value systemd's Limit*= takes: a number with an
// optional size suffix, or infinity, optionally soft:hard.
var limitValue = regexp.MustCompile(`^(infinity|[0-9]+[KMGTPE]?)(:(infinity|[0-9]+[KMGTPE]?))?$`)

// checkUnitOptions checks process_options, environment_files and hardening.
func (s *Spec) checkUnitOptions() error {
	procs := map[string]bool{}
	var names []string
	for _, p := range s.procs {
		procs[p.Name] = true
		names = append(names, p.Name)
	}
	keys := make([]string, 0, len(s.ProcessOptions))
	for k := range s.ProcessOptions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		o, field := s.ProcessOptions[name], "process_options."+name
		if !procs[name] {
			if len(names) == 0 {
				return s.bad(field, "no such process (the package has none)")
			}
			return s.bad(field, "no such process (the processes are %s)", strings.Join(names, ", "))
		}
		if o.WorkingDirectory != "" {
			if i := strings.IndexFunc(o.WorkingDirectory, unicode.IsControl); i >= 0 {
				return s.bad(field+".working_directory", "contains the control character %q (a value here must fit on one line)", o.WorkingDirectory[i])
			}
			if !strings.HasPrefix(o.WorkingDirectory, "/") {
				return s.bad(field+".working_directory", "%q is not an absolute path", o.WorkingDirectory)
			}
		}
		lk := make([]string, 0, len(o.Limits))
		for k := range o.Limits {
			lk = append(lk, k)
		}
		sort.Strings(lk)
		for _, k := range lk {
			if _, ok := limitNames[k]; !ok {
				all := make([]string, 0, len(limitNames))
				for n := range limitNames {
					all = append(all, n)
				}
				sort.Strings(all)
				return s.bad(field+".limits."+k, "not a systemd resource limit (one of %s)", strings.Join(all, ", "))
			}
			if !limitValue.MatchString(o.Limits[k]) {
				return s.bad(field+".limits."+k, "%q is not a limit (a number, \"infinity\", or \"soft:hard\")", o.Limits[k])
			}
		}
		if o.StopTimeout < 0 {
			return s.bad(field+".stop_timeout", "%v is not a positive duration", o.StopTimeout)
		}
	}
	for i, p := range s.EnvironmentFiles {
		field := fmt.Sprintf("environment_files[%d]", i)
		if j := strings.IndexFunc(p, unicode.IsControl); j >= 0 {
			return s.bad(field, "contains the control character %q (a value here must fit on one line)", p[j])
		}
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t") {
			return s.bad(field, "%q is not an absolute path", p)
		}
		if len(s.procs) == 0 {
			return s.bad(field, "the package has no processes to read it")
		}
	}
	if s.Hardening && len(s.procs) == 0 {
		return s.bad("hardening", "the package has no processes to harden")
	}
	return nil
}

// checkCopyright checks the copyright field names a file.
func (s *Spec) checkCopyright() error {
	if s.Copyright == "" {
		return nil
	}
	if fi, err := os.Stat(s.path(s.Copyright)); err != nil || !fi.Mode().IsRegular() {
		return s.bad("copyright", "%s does not exist or is not a file", s.Copyright)
	}
	return nil
}

func (s *Spec) checkFile(field string, f File, config bool) error {
	switch {
	case f.Src == "":
		return s.bad(field+".src", "missing")
	case f.Dst == "":
		return s.bad(field+".dst", "missing")
	case !strings.HasPrefix(f.Dst, "/"):
		return s.bad(field+".dst", "%q is not an absolute path", f.Dst)
	case strings.Contains(f.Dst, "/../") || strings.HasSuffix(f.Dst, "/.."):
		return s.bad(field+".dst", "%q contains \"..\"", f.Dst)
	}
	fi, err := os.Stat(s.path(f.Src))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return s.bad(field+".src", "%s does not exist", f.Src)
		}
		return s.bad(field+".src", "%v", err)
	}
	if config && !strings.HasPrefix(f.Dst, "/etc/") {
		return s.bad(field+".dst", "%s: conffiles must live under /etc", f.Dst)
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return s.bad(field+".src", "%s is not a regular file or directory", f.Src)
	}
	if err := s.checkMode(field, f); err != nil {
		return err
	}
	for _, o := range []struct{ key, name string }{{"owner", f.Owner}, {"group", f.Group}} {
		switch {
		case o.name == "":
		case !userPattern.MatchString(o.name):
			return s.bad(field+"."+o.key, "%q is not a valid user name", o.name)
		case o.name == s.User && !s.hasServiceUser():
			return s.bad(field+"."+o.key, "%q is the service user, which exists only for a package with processes", o.name)
		}
	}
	return nil
}

// checkMode refuses, unless the entry allows it, a mode with setuid,
// setgid or sticky bits or group or other write: the entry's own mode, or
// without one a source file's (group and other write are dropped from
// those anyway).
func (s *Spec) checkMode(field string, f File) error {
	if f.AllowUnsafeMode {
		return nil
	}
	if f.Mode != 0 {
		if bits := unsafeBits(uint32(f.Mode)); bits != "" {
			return s.bad(field+".mode", "%04o sets %s (set allow_unsafe_mode: true on this entry if that is meant)", uint32(f.Mode), bits)
		}
		return nil
	}
	return filepath.WalkDir(s.path(f.Src), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return s.bad(field+".src", "%v", err)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return s.bad(field+".src", "%v", err)
		}
		mode := octalMode(fi.Mode()) &^ 0o022
		if bits := unsafeBits(mode); bits != "" {
			rel, _ := filepath.Rel(s.dir, p)
			return s.bad(field+".src", "%s has mode %04o, which sets %s (set a mode, or allow_unsafe_mode: true on this entry if that is meant)", rel, mode, bits)
		}
		return nil
	})
}

// hasServiceUser reports whether postinst creates the service user: the
// package has processes and they do not run as root.
func (s *Spec) hasServiceUser() bool { return len(s.procs) > 0 && s.User != "root" }

// owner returns who owns an installed entry: its owner and group, or root,
// except that a config file under /etc/<name>/ belongs to the service
// user's group when there is one.
func (s *Spec) owner(f File, config bool) (owner, group string) {
	owner, group = f.Owner, f.Group
	if owner == "" {
		owner = "root"
	}
	if group == "" {
		group = "root"
		if config && s.hasServiceUser() && strings.HasPrefix(filepath.Clean(f.Dst), "/etc/"+s.Name+"/") {
			group = s.User
		}
	}
	return owner, group
}

// loadProcesses fills s.procs from the Procfile or the processes map.
func (s *Spec) loadProcesses() error {
	field := "processes"
	if s.Procfile != "" {
		field = "procfile"
		f, err := os.Open(s.path(s.Procfile))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return s.bad("procfile", "%s does not exist", s.Procfile)
			}
			return s.bad("procfile", "%v", err)
		}
		defer f.Close()
		if s.procs, err = ParseProcfile(f, filepath.Join(s.dir, s.Procfile)); err != nil {
			return err
		}
	} else {
		names := make([]string, 0, len(s.Processes))
		for n := range s.Processes {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s.procs = append(s.procs, Process{Name: n, Command: strings.TrimSpace(s.Processes[n])})
		}
	}
	for _, p := range s.procs {
		switch {
		case !procPattern.MatchString(p.Name):
			return s.bad(field, "process name %q: use lowercase letters, digits, '-' and '_'", p.Name)
		case p.Command == "":
			return s.bad(field+"."+p.Name, "no command")
		}
		if err := checkCommand(p.Command); err != nil {
			return s.bad(field+"."+p.Name, "%v", err)
		}
	}
	return nil
}

// path resolves a spec-relative path.
func (s *Spec) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.dir, p)
}

// SetVersion sets the package version after checking it is a valid Debian
// version.
func (s *Spec) SetVersion(v string) error {
	if err := debian.CheckVersion(v); err != nil {
		return s.bad("version", "%v", err)
	}
	s.Version = v
	return nil
}

// ProcessList returns the package's processes in unit order.
func (s *Spec) ProcessList() []Process { return slices.Clone(s.procs) }

// File returns the file the spec was read from.
func (s *Spec) File() string { return s.file }

// FileName returns the conventional .deb file name,
// <name>_<version without epoch>_<arch>.deb.
func (s *Spec) FileName() string {
	v := s.Version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return s.Name + "_" + v + "_" + s.Arch + ".deb"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}
