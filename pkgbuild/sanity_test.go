package pkgbuild_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// specDir writes a spec and the files it names into a temporary directory
// and returns the spec's path.
func specDir(t *testing.T, spec string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "hooks/") {
			mode = 0o755
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "package.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSpecSanity feeds specs that would build a package failing (or unsafe)
// on the instance: each is refused with one line naming the file, the field
// and the problem.
func TestSpecSanity(t *testing.T) {
	const base = "name: app\nversion: 1.0-1\nmaintainer: A <a@example.com>\ndescription: an app\n"
	const web = "processes: {web: /usr/bin/app}\n"
	tests := []struct {
		name  string
		spec  string
		files map[string]string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"setuid, world-writable conffile", base + "config_files:\n  - {src: app.conf, dst: /etc/app/app.conf, mode: \"7777\"}\n",
			map[string]string{"app.conf": "x\n"}, nil,
			"SPEC: config_files[0].mode: 7777 sets setuid, setgid, sticky, group write and other write (set allow_unsafe_mode: true on this entry if that is meant)"},
		{"setuid binary", base + "files:\n  - {src: bin/app, dst: /usr/bin/app, mode: \"4755\"}\n",
			map[string]string{"bin/app": "#!/bin/sh\n"}, nil,
			"SPEC: files[0].mode: 4755 sets setuid (set allow_unsafe_mode: true on this entry if that is meant)"},
		{"group-writable file", base + "files:\n  - {src: bin/app, dst: /usr/bin/app, mode: \"0775\"}\n",
			map[string]string{"bin/app": "#!/bin/sh\n"}, nil,
			"SPEC: files[0].mode: 0775 sets group write (set allow_unsafe_mode: true on this entry if that is meant)"},
		{"setgid source without a mode", base + "files:\n  - {src: bin, dst: /usr/lib/app}\n",
			map[string]string{"bin/app": "#!/bin/sh\n"},
			func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "bin/app"), os.ModeSetgid|0o755) },
			"SPEC: files[0].src: bin/app has mode 2755, which sets setgid (set a mode, or allow_unsafe_mode: true on this entry if that is meant)"},
		{"mode 0", base + "files:\n  - {src: bin/app, dst: /usr/bin/app, mode: 0}\n",
			map[string]string{"bin/app": "#!/bin/sh\n"}, nil,
			`SPEC:6: mode "0" grants no permission at all (leave mode out to keep the source's)`},
		{"bad owner", base + web + "config_files:\n  - {src: app.conf, dst: /etc/app/app.conf, owner: \"Bad User\"}\n",
			map[string]string{"app.conf": "x\n"}, nil,
			`SPEC: config_files[0].owner: "Bad User" is not a valid user name`},
		{"service user of a package without processes", base + "config_files:\n  - {src: app.conf, dst: /etc/app/app.conf, group: app}\n",
			map[string]string{"app.conf": "x\n"}, nil,
			`SPEC: config_files[0].group: "app" is the service user, which exists only for a package with processes`},
		{"Procfile line with an unbalanced quote", base + "procfile: Procfile\n",
			map[string]string{"Procfile": "web: /usr/bin/app\nworker: /usr/bin/app work --name \"x\n"}, nil,
			"DIR/Procfile:2: worker: sh -n: Syntax error: Unterminated quoted string"},
		{"process with a shell syntax error", base + "processes: {web: \"/usr/bin/app | (grep x\"}\n", nil, nil,
			`SPEC: processes.web: sh -n: Syntax error: end of file unexpected (expecting ")")`},
		{"hook with a shell syntax error", base + "hooks: {postinst: hooks/postinst}\n",
			map[string]string{"hooks/postinst": "#!/bin/sh\nif true; then\n  echo hi\n"}, nil,
			`SPEC: hooks.postinst: hooks/postinst: sh -n: line 4: Syntax error: end of file unexpected (expecting "fi")`},
		{"options of an unknown process", base + web + "process_options: {worker: {stop_timeout: 5s}}\n", nil, nil,
			"SPEC: process_options.worker: no such process (the processes are web)"},
		{"relative working directory", base + web + "process_options: {web: {working_directory: srv}}\n", nil, nil,
			`SPEC: process_options.web.working_directory: "srv" is not an absolute path`},
		{"unknown limit", base + web + "process_options: {web: {limits: {files: 1024}}}\n", nil, nil,
			`SPEC: process_options.web.limits.files: not a systemd resource limit (one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)`},
		{"bad limit value", base + web + "process_options: {web: {limits: {nofile: lots}}}\n", nil, nil,
			`SPEC: process_options.web.limits.nofile: "lots" is not a limit (a number, "infinity", or "soft:hard")`},
		{"negative stop timeout", base + web + "process_options: {web: {stop_timeout: -5s}}\n", nil, nil,
			`SPEC: process_options.web.stop_timeout: -5s is not a positive duration`},
		{"relative environment file", base + web + "environment_files: [secrets.env]\n", nil, nil,
			`SPEC: environment_files[0]: "secrets.env" is not an absolute path`},
		{"environment file with a newline", base + web + "environment_files: [\"/etc/app/a\\nExecStartPre=+/bin/sh\"]\n", nil, nil,
			`SPEC: environment_files[0]: contains the control character '\n' (a value here must fit on one line)`},
		{"hardening without processes", base + "hardening: true\n", nil, nil,
			`SPEC: hardening: the package has no processes to harden`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := specDir(t, tt.spec, tt.files)
			dir := filepath.Dir(spec)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			wantParseError(t, spec, strings.NewReplacer("SPEC", spec, "DIR", dir).Replace(tt.want))
		})
	}
}

// TestUnsafeModeAllowed checks allow_unsafe_mode lets an entry keep the
// mode it asks for, and only that entry.
func TestUnsafeModeAllowed(t *testing.T) {
	spec := specDir(t, "name: app\nversion: 1.0-1\nmaintainer: A <a@example.com>\ndescription: an app\n"+
		"files:\n  - {src: bin/app, dst: /usr/bin/app, mode: \"4755\", allow_unsafe_mode: true}\n"+
		"  - {src: bin/app, dst: /usr/bin/app2, mode: \"0755\"}\n",
		map[string]string{"bin/app": "#!/bin/sh\n"})
	deb := readDeb(t, build(t, loadSpec(t, spec)))
	if got := listingMode(deb.listing, "usr/bin/app"); got != "-4755" {
		t.Errorf("usr/bin/app mode %s, want -4755", got)
	}
	if got := listingMode(deb.listing, "usr/bin/app2"); got != "-0755" {
		t.Errorf("usr/bin/app2 mode %s, want -0755", got)
	}
}

// TestConffileOwner checks a conffile under /etc/<name>/ is made readable by
// the service user (root owns it, the service user's group reads it), that
// owner and group can be set, and that another path stays root's.
func TestConffileOwner(t *testing.T) {
	spec := specDir(t, "name: app\nversion: 1.0-1\nmaintainer: A <a@example.com>\ndescription: an app\n"+
		"processes: {web: /usr/bin/app}\n"+
		"config_files:\n"+
		"  - {src: app.conf, dst: /etc/app/app.conf, mode: \"0640\"}\n"+
		"  - {src: app.conf, dst: /etc/app/state.conf, mode: \"0600\", owner: app}\n"+
		"  - {src: app.conf, dst: /etc/other.conf, mode: \"0640\"}\n"+
		"  - {src: app.conf, dst: /etc/app/root.conf, mode: \"0600\", group: root}\n",
		map[string]string{"app.conf": "secret\n"})
	s := loadSpec(t, spec)
	deb := readDeb(t, build(t, s))
	post := string(deb.control["postinst"])
	for _, want := range []string{
		"chown 'root:app' '/etc/app/app.conf'",
		"chown 'app:app' '/etc/app/state.conf'",
	} {
		if !strings.Contains(post, want) {
			t.Errorf("postinst lacks %q:\n%s", want, post)
		}
	}
	for _, not := range []string{"/etc/other.conf", "/etc/app/root.conf"} {
		if strings.Contains(post, not) {
			t.Errorf("postinst changes the owner of %s:\n%s", not, post)
		}
	}
	if i, j := strings.Index(post, "useradd"), strings.Index(post, "chown 'root:app'"); i < 0 || j < i {
		t.Errorf("postinst does not create the user before chown:\n%s", post)
	}
}

// TestUnitOptions checks the per-process options, the hardening and the
// extra environment files reach the units they belong to.
func TestUnitOptions(t *testing.T) {
	spec := specDir(t, "name: app\nversion: 1.0-1\nmaintainer: A <a@example.com>\ndescription: an app\n"+
		"processes: {web: /usr/bin/app web, worker: /usr/bin/app work}\n"+
		"process_options:\n"+
		"  web: {working_directory: /var/lib/app%x, limits: {nofile: 65536, core: \"0:infinity\"}, stop_timeout: 90s}\n"+
		"environment_files: [/etc/app/secrets.env, /run/app/extra.env]\n"+
		"hardening: true\n", nil)
	s := loadSpec(t, spec)
	units := map[string]string{}
	for _, u := range s.Units() {
		units[u.Name] = string(u.Content)
	}
	webWant := []string{
		"EnvironmentFile=/etc/default/app\nEnvironmentFile=-/etc/app/secrets.env\nEnvironmentFile=-/run/app/extra.env\n",
		"WorkingDirectory=/var/lib/app%%x\n",
		"LimitCORE=0:infinity\n",
		"LimitNOFILE=65536\n",
		"TimeoutStopSec=90s\n",
		"NoNewPrivileges=yes\n",
		"ProtectSystem=full\n",
		"PrivateTmp=yes\n",
		"CapabilityBoundingSet=\n",
	}
	for _, w := range webWant {
		if !strings.Contains(units["app-web.service"], w) {
			t.Errorf("app-web.service lacks %q:\n%s", w, units["app-web.service"])
		}
	}
	worker := units["app-worker.service"]
	for _, w := range []string{"WorkingDirectory=", "LimitNOFILE=", "TimeoutStopSec="} {
		if strings.Contains(worker, w) {
			t.Errorf("app-worker.service has web's %q:\n%s", w, worker)
		}
	}
	for _, w := range []string{"EnvironmentFile=-/etc/app/secrets.env\n", "NoNewPrivileges=yes\n"} {
		if !strings.Contains(worker, w) {
			t.Errorf("app-worker.service lacks %q:\n%s", w, worker)
		}
	}
}
