package pkgbuild

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Scripts are the generated maintainer scripts; an empty one is not shipped.
type Scripts struct {
	PreInst, PostInst, PreRm, PostRm string
}

// MaintainerScripts generates the maintainer scripts: postinst creates the
// service user, enables the units, and starts them on first install only
// (upgrades never restart: the puller restarts after draining); prerm stops
// the units on removal; postrm cleans up as debhelper's scripts do. The spec's
// hooks run from them, each in a subshell with the script's arguments.
func (s *Spec) MaintainerScripts() (Scripts, error) {
	var out Scripts
	hook := func(field, path string) (string, error) {
		if path == "" {
			return "", nil
		}
		b, err := os.ReadFile(s.path(path))
		if err != nil {
			return "", s.bad(field, "%v", err)
		}
		body := strings.TrimRight(string(b), "\n")
		if strings.HasPrefix(body, "#!") {
			if i := strings.IndexByte(body, '\n'); i >= 0 {
				body = body[i+1:]
			} else {
				body = ""
			}
		}
		return fmt.Sprintf("\n# hooks.%s: %s\n(\n%s\n)\n", strings.TrimPrefix(field, "hooks."), path, body), nil
	}
	units := s.Units()
	var names []string
	for _, u := range units {
		names = append(names, "'"+u.Name+"'")
	}
	unitList := strings.Join(names, " ")
	const header = "#!/bin/sh\nset -e\n"

	// preinst: only the hook.
	h, err := hook("hooks.preinst", s.Hooks.PreInst)
	if err != nil {
		return out, err
	}
	if h != "" {
		out.PreInst = header + h
	}

	// postinst.
	var b strings.Builder
	b.WriteString(header)
	if len(units) > 0 && s.User != "root" {
		fmt.Fprintf(&b, `
if [ "$1" = "configure" ]; then
	if ! getent group '%[1]s' >/dev/null; then
		groupadd --system '%[1]s'
	fi
	if ! getent passwd '%[1]s' >/dev/null; then
		useradd --system --gid '%[1]s' --home-dir /nonexistent --no-create-home \
			--shell /usr/sbin/nologin --comment '%[2]s service' '%[1]s'
	fi
fi
`, s.User, s.Name)
	}
	if chowns := s.chowns(); chowns != "" {
		fmt.Fprintf(&b, "\nif [ \"$1\" = \"configure\" ]; then\n%s\nfi\n", chowns)
	}
	h, err = hook("hooks.postinst", s.Hooks.PostInst)
	if err != nil {
		return out, err
	}
	b.WriteString(h)
	if len(units) > 0 {
		fmt.Fprintf(&b, `
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
	for unit in %[1]s; do
		# Only removes masks created by deb-systemd-helper on removal.
		deb-systemd-helper unmask "$unit" >/dev/null || true
		# was-enabled is true on first install: the units are enabled then;
		# on upgrade an administrator's disable is kept.
		if deb-systemd-helper --quiet was-enabled "$unit"; then
			deb-systemd-helper enable "$unit" >/dev/null || true
		else
			deb-systemd-helper update-state "$unit" >/dev/null || true
		fi
	done
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		# First install: start. Upgrade ($2 = the previous version): no
		# restart; the deploying agent restarts after draining the host.
		if [ -z "$2" ]; then
			deb-systemd-invoke start '%[2]s' >/dev/null || true
		fi
	fi
fi
`, unitList, s.TargetName())
	}
	if b.Len() > len(header) {
		out.PostInst = b.String() + "\nexit 0\n"
	}

	// prerm.
	b.Reset()
	b.WriteString(header)
	if len(units) > 0 {
		fmt.Fprintf(&b, `
if [ -d /run/systemd/system ] && [ "$1" = "remove" ]; then
	deb-systemd-invoke stop %s >/dev/null || true
fi
`, unitList)
	}
	h, err = hook("hooks.prerm", s.Hooks.PreRm)
	if err != nil {
		return out, err
	}
	b.WriteString(h)
	if b.Len() > len(header) {
		out.PreRm = b.String() + "\nexit 0\n"
	}

	// postrm.
	b.Reset()
	b.WriteString(header)
	if len(units) > 0 {
		fmt.Fprintf(&b, `
if [ -d /run/systemd/system ] && [ "$1" = "remove" ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "remove" ] && command -v deb-systemd-helper >/dev/null 2>&1; then
	deb-systemd-helper mask %[1]s >/dev/null || true
fi
if [ "$1" = "purge" ] && command -v deb-systemd-helper >/dev/null 2>&1; then
	deb-systemd-helper purge %[1]s >/dev/null || true
	deb-systemd-helper unmask %[1]s >/dev/null || true
fi
`, unitList)
	}
	h, err = hook("hooks.postrm", s.Hooks.PostRm)
	if err != nil {
		return out, err
	}
	b.WriteString(h)
	if b.Len() > len(header) {
		out.PostRm = b.String() + "\nexit 0\n"
	}
	return out, nil
}

// chowns are the postinst lines giving installed entries their owner and
// group (a directory entry's whole tree), unless an administrator set a
// dpkg-statoverride. Entries owned by root:root need none.
func (s *Spec) chowns() string {
	var lines []string
	for _, list := range []struct {
		files  []File
		config bool
	}{{s.Files, false}, {s.ConfigFiles, true}} {
		for _, f := range list.files {
			owner, group := s.owner(f, list.config)
			if owner == "root" && group == "root" {
				continue
			}
			dst := shellQuote(filepath.Clean(f.Dst))
			change := fmt.Sprintf("chown %s %s", shellQuote(owner+":"+group), dst)
			if fi, err := os.Stat(s.path(f.Src)); err == nil && fi.IsDir() {
				change = fmt.Sprintf("chown -R %s %s", shellQuote(owner+":"+group), dst)
			} else if f.Mode&0o7000 != 0 {
				// chown clears setuid and setgid: set the mode again.
				change = fmt.Sprintf("{ %s; chmod %04o %s; }", change, uint32(f.Mode), dst)
			}
			lines = append(lines, fmt.Sprintf("\tdpkg-statoverride --list %s >/dev/null || %s", dst, change))
		}
	}
	return strings.Join(lines, "\n")
}

// shellQuote quotes v for sh.
func shellQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
