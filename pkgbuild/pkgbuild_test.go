package pkgbuild_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/pkgbuild"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// epoch is the SOURCE_DATE_EPOCH of the golden builds.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func loadSpec(t testing.TB, path string) *pkgbuild.Spec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := pkgbuild.Parse(f, path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func build(t *testing.T, s *pkgbuild.Spec) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pkgbuild.Build(s, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the build (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGolden builds the fixture package and compares its control files,
// generated units, environment file, docs and file listing with testdata/golden.
func TestGolden(t *testing.T) {
	s := loadSpec(t, "testdata/webapp/package.yaml")
	s.ModTime = epoch
	deb := readDeb(t, build(t, s))

	if got, want := strings.Join(deb.members, " "), "debian-binary control.tar.gz data.tar.gz"; got != want {
		t.Errorf("ar members %q, want %q", got, want)
	}
	for _, name := range []string{"control", "conffiles", "md5sums", "preinst", "postinst", "prerm", "postrm"} {
		t.Run(name, func(t *testing.T) {
			b, ok := deb.control[name]
			if !ok {
				t.Fatalf("no %s in control.tar.gz", name)
			}
			golden(t, "testdata/golden/"+name, b)
		})
	}
	for _, p := range []string{
		"lib/systemd/system/webapp-web.service",
		"lib/systemd/system/webapp-worker.service",
		"lib/systemd/system/webapp-release.service",
		"lib/systemd/system/webapp.target",
		"etc/default/webapp",
		"usr/share/doc/webapp/copyright",
		"usr/share/lintian/overrides/webapp",
	} {
		t.Run(p, func(t *testing.T) {
			b, ok := deb.data[p]
			if !ok {
				t.Fatalf("no %s in data.tar.gz", p)
			}
			golden(t, "testdata/golden/"+strings.ReplaceAll(p, "/", "_"), b)
		})
	}
	t.Run("listing", func(t *testing.T) {
		golden(t, "testdata/golden/listing", []byte(strings.Join(deb.listing, "\n")+"\n"))
	})
	t.Run("units match Units()", func(t *testing.T) {
		for _, u := range s.Units() {
			if !bytes.Equal(deb.data["lib/systemd/system/"+u.Name], u.Content) {
				t.Errorf("%s in the package differs from Units()", u.Name)
			}
		}
	})
}

// TestReproducible builds the fixture from two copies of its tree that
// differ in file times and in group-write bits (a different umask at
// checkout): the packages must be byte-identical. A different ModTime must
// change them.
func TestReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	copyTree(t, "testdata/webapp", a)
	copyTree(t, "testdata/webapp", b)
	later := time.Now().Add(time.Hour)
	filepath.Walk(b, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		os.Chmod(p, fi.Mode().Perm()|0o020)
		return os.Chtimes(p, later, later)
	})
	sa, sb := loadSpec(t, filepath.Join(a, "package.yaml")), loadSpec(t, filepath.Join(b, "package.yaml"))
	sa.ModTime, sb.ModTime = epoch, epoch
	debA, debB := build(t, sa), build(t, sb)
	if !bytes.Equal(debA, debB) {
		t.Fatalf("two builds of the same inputs differ (%d and %d bytes)", len(debA), len(debB))
	}
	sb.ModTime = epoch.Add(time.Second)
	if bytes.Equal(debA, build(t, sb)) {
		t.Fatal("a different ModTime gave the same bytes: the time stamps are not in the package")
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}

// TestSpecErrors feeds bad specs and checks each error is one line naming
// the file, the field and the problem.
func TestSpecErrors(t *testing.T) {
	const base = "name: app\nmaintainer: A <a@example.com>\ndescription: an app\n"
	tests := []struct {
		name     string
		spec     string
		procfile string
		want     string
	}{
		{"missing name", "maintainer: A <a@example.com>\ndescription: x\n", "",
			"SPEC: name: missing (the package name is required)"},
		{"bad name", strings.Replace(base, "name: app", "name: My_App", 1), "",
			`SPEC: name: "My_App" is not a valid Debian package name (lowercase letters, digits, '+', '-', '.'; at least 2 characters)`},
		{"version with a space", base + "version: 1.0 beta\n", "",
			`SPEC: version: "1.0 beta" is not a valid Debian version: it contains whitespace`},
		{"version starting with a hyphen", base + "version: \"-1\"\n", "",
			`SPEC: version: "-1" is not a valid Debian version: it must start with a digit`},
		{"unknown architecture", base + "arch: x86_64\n", "",
			`SPEC: arch: "x86_64" is not a Debian architecture (one of ` + "`dpkg-architecture -L`" + `, or "all")`},
		{"colon without an epoch", base + "version: \"1.0:1\"\n", "",
			`SPEC: version: "1.0:1" is not a valid Debian version: epoch "1.0" is not a number`},
		{"unknown key", base + "dependz: [curl]\n", "",
			"SPEC:4: dependz: unknown field"},
		{"nested unknown key", base + "files:\n  - {src: a, dest: /a}\n", "",
			"SPEC:5: dest: unknown field"},
		{"wrong type", base + "depends: curl\n", "",
			"SPEC:4: cannot unmarshal !!str `curl` into []string"},
		{"missing maintainer", "name: app\ndescription: x\n", "",
			`SPEC: maintainer: missing (want "Name <email>")`},
		{"missing description", "name: app\nmaintainer: A <a@example.com>\n", "",
			"SPEC: description: missing (a one-line synopsis is required)"},
		{"file that does not exist", base + "files:\n  - {src: bin/missing, dst: /usr/bin/missing}\n", "",
			"SPEC: files[0].src: bin/missing does not exist"},
		{"relative destination", base + "files:\n  - {src: Procfile, dst: usr/bin/x}\n", "web: /bin/true\n",
			`SPEC: files[0].dst: "usr/bin/x" is not an absolute path`},
		{"conffile outside /etc", base + "config_files:\n  - {src: Procfile, dst: /usr/x}\n", "web: /bin/true\n",
			"SPEC: config_files[0].dst: /usr/x: conffiles must live under /etc"},
		{"bad mode", base + "files:\n  - {src: Procfile, dst: /x, mode: rwx}\n", "web: /bin/true\n",
			`SPEC:5: mode "rwx" is not an octal file mode`},
		{"procfile that does not exist", base + "procfile: Procfile.missing\n", "",
			"SPEC: procfile: Procfile.missing does not exist"},
		{"Procfile line without a command", base + "procfile: Procfile\n", "web: /usr/bin/app\nworker:\n",
			"DIR/Procfile:2: worker: no command"},
		{"Procfile line without a colon", base + "procfile: Procfile\n", "# c\nweb /usr/bin/app\n",
			`DIR/Procfile:2: "web /usr/bin/app" is not "name: command"`},
		{"Procfile duplicate", base + "procfile: Procfile\n", "web: /a\nweb: /b\n",
			"DIR/Procfile:2: web: process already defined on line 1"},
		{"Procfile relative program", base + "procfile: Procfile\n", "web: bin/app\n",
			`DIR/Procfile:1: web: "bin/app": start the command with an absolute path or a program name found on PATH (the package's files live at their installed paths)`},
		{"empty Procfile", base + "procfile: Procfile\n", "# nothing\n",
			"DIR/Procfile: no processes"},
		{"process without a command", base + "processes: {web: \"\"}\n", "",
			"SPEC: processes.web: no command"},
		{"procfile and processes", base + "procfile: Procfile\nprocesses: {web: /a}\n", "web: /a\n",
			"SPEC: processes: set either procfile or processes, not both"},
		{"bad environment name", base + "environment: {\"A-B\": x}\n", "",
			`SPEC: environment: "A-B" is not a valid variable name`},
		{"bad compression level", base + "compression: gzip:10\n", "",
			`SPEC: compression: "gzip:10" is not one of gzip, gzip:1-9, xz, zstd, zstd:1-22, none`},
		{"bad compression", base + "compression: lz4\n", "",
			`SPEC: compression: "lz4" is not one of gzip, gzip:1-9, xz, zstd, zstd:1-22, none`},
		{"bad relation", base + "depends: [\"curl >= 7\"]\n", "",
			`SPEC: depends[0]: "curl >= 7" is not a package relation like "libc6 (>= 2.36)"`},
		{"generated path", base + "processes: {web: /a}\nconfig_files:\n  - {src: Procfile, dst: /etc/default/app}\n", "web: /a\n",
			"SPEC: config_files[0].dst: /etc/default/app is generated by pkgbuild; set it through the spec instead"},
		{"hook that does not exist", base + "hooks: {postinst: hooks/nope}\n", "",
			"SPEC: hooks.postinst: hooks/nope does not exist or is not a file"},
		{"empty spec", "", "", "SPEC: empty spec"},
		// Values that end up in the control file or a unit must fit on one
		// line: a newline in homepage would add a [Service] section (and a
		// root ExecStartPre=+) to every unit; one in section would add
		// Version: and Package: lines to the control file.
		{"homepage injects a unit section", base + "homepage: \"http://x\\n[Service]\\nExecStartPre=+/bin/touch /root/pwned\"\nprocesses: {web: /a}\n", "",
			`SPEC: homepage: contains the control character '\n' (a value here must fit on one line)`},
		{"section injects fields", base + "section: \"web\\nVersion: 99\\nPackage: webapp\"\n", "",
			`SPEC: section: contains the control character '\n' (a value here must fit on one line)`},
		{"maintainer with a newline", "name: app\nmaintainer: \"A <a@example.com>\\nEssential: yes\"\ndescription: an app\n", "",
			`SPEC: maintainer: "A <a@example.com>\nEssential: yes" is not of the form "Name <email>"`},
		{"license with a newline", base + "license: \"MIT\\nFiles: *\"\n", "",
			`SPEC: license: contains the control character '\n' (a value here must fit on one line)`},
		{"description with a control character", "name: app\nmaintainer: A <a@example.com>\ndescription: \"an app\\rVersion: 2\"\n", "",
			`SPEC: description: contains the control character '\r'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			spec := filepath.Join(dir, "package.yaml")
			os.WriteFile(spec, []byte(tt.spec), 0o644)
			if tt.procfile != "" {
				os.WriteFile(filepath.Join(dir, "Procfile"), []byte(tt.procfile), 0o644)
			}
			wantParseError(t, spec, strings.NewReplacer("SPEC", spec, "DIR", dir).Replace(tt.want))
		})
	}
}

// wantParseError parses the spec file and checks it is refused with exactly
// want, on one line, as pkgbuild.ErrInvalid.
func wantParseError(t *testing.T, spec, want string) {
	t.Helper()
	f, err := os.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = pkgbuild.Parse(f, spec)
	if err == nil {
		t.Fatal("no error")
	}
	if err.Error() != want {
		t.Errorf("error\n  %s\nwant\n  %s", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Error("error spans more than one line")
	}
	if !errors.Is(err, pkgbuild.ErrInvalid) {
		t.Error("error does not match pkgbuild.ErrInvalid")
	}
}

// TestBuildNeedsVersion checks a spec without a version cannot be built.
func TestBuildNeedsVersion(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "package.yaml")
	os.WriteFile(spec, []byte("name: app\nmaintainer: A <a@example.com>\ndescription: x\n"), 0o644)
	s := loadSpec(t, spec)
	err := pkgbuild.Build(s, &bytes.Buffer{})
	if err == nil || err.Error() != spec+": version: missing (set it in the spec, or pass --version)" {
		t.Errorf("err = %v", err)
	}
}

// TestPlainPackage checks a spec with only files (a CLI, or an agent whose
// single process runs as root) gets no user and the right units.
func TestPlainPackage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "agent"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte("interval: 1m\n"), 0o644)
	tests := []struct {
		name      string
		extra     string
		units     []string
		postinst  []string // substrings expected in postinst
		notInPost []string
	}{
		{"files only", "", nil, nil, []string{"useradd", "deb-systemd"}},
		{"one process as root", "user: root\nprocesses: {agent: /usr/bin/agent run}\nconfig_files:\n  - {src: agent.yaml, dst: /etc/agent/agent.yaml}\n",
			[]string{"agent-agent.service", "agent.target"},
			[]string{"deb-systemd-helper enable", "deb-systemd-invoke start 'agent.target'"}, []string{"useradd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := filepath.Join(dir, "package.yaml")
			os.WriteFile(spec, []byte("name: agent\nversion: 1.0-1\nmaintainer: A <a@example.com>\ndescription: x\n"+
				"files:\n  - {src: agent, dst: /usr/bin/agent}\n"+tt.extra), 0o644)
			s := loadSpec(t, spec)
			deb := readDeb(t, build(t, s))
			var units []string
			for p := range deb.data {
				if strings.HasPrefix(p, "lib/systemd/system/") {
					units = append(units, strings.TrimPrefix(p, "lib/systemd/system/"))
				}
			}
			if strings.Join(sorted(units), " ") != strings.Join(tt.units, " ") {
				t.Errorf("units %v, want %v", units, tt.units)
			}
			post := string(deb.control["postinst"])
			for _, w := range tt.postinst {
				if !strings.Contains(post, w) {
					t.Errorf("postinst lacks %q:\n%s", w, post)
				}
			}
			for _, w := range tt.notInPost {
				if strings.Contains(post, w) {
					t.Errorf("postinst has %q:\n%s", w, post)
				}
			}
			if len(tt.units) > 0 && strings.Contains(string(deb.data["lib/systemd/system/agent-agent.service"]), "User=") {
				t.Error("a root service has User=")
			}
			if mode := listingMode(deb.listing, "usr/bin/agent"); mode != "-0755" {
				t.Errorf("usr/bin/agent mode %s", mode)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func listingMode(listing []string, path string) string {
	for _, l := range listing {
		f := strings.Fields(l)
		if len(f) >= 3 && f[2] == path {
			return f[0]
		}
	}
	return ""
}

// TestCompression builds the fixture with each compression and checks
// dpkg-deb reads the package back: the data member, its files and control.
func TestCompression(t *testing.T) {
	testenv.NeedTools(t, "dpkg-deb", "ar")
	tests := []struct{ compression, member string }{
		{"gzip", "data.tar.gz"},
		{"gzip:1", "data.tar.gz"},
		{"xz", "data.tar.xz"},
		{"zstd", "data.tar.zst"},
		{"zstd:3", "data.tar.zst"},
		{"none", "data.tar"},
	}
	for _, tt := range tests {
		t.Run(tt.compression, func(t *testing.T) {
			s := loadSpec(t, "testdata/webapp/package.yaml")
			s.Compression = tt.compression
			deb := filepath.Join(t.TempDir(), s.FileName())
			if err := os.WriteFile(deb, build(t, s), 0o644); err != nil {
				t.Fatal(err)
			}
			members, err := exec.Command("ar", "t", deb).Output()
			if err != nil {
				t.Fatalf("ar t: %v", err)
			}
			if want := "debian-binary\ncontrol.tar.gz\n" + tt.member + "\n"; string(members) != want {
				t.Errorf("members %q, want %q", members, want)
			}
			out, err := exec.Command("dpkg-deb", "--contents", deb).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "./usr/bin/webapp") {
				t.Errorf("dpkg-deb --contents: %v\n%s", err, out)
			}
			out, err = exec.Command("dpkg-deb", "--field", deb, "Version").CombinedOutput()
			if err != nil || string(out) != "2:1.4.0~rc1-3\n" {
				t.Errorf("dpkg-deb --field: %v %q", err, out)
			}
		})
	}
}
