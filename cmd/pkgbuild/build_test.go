package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
)

// fixture copies pkgbuild's webapp fixture into a temp dir and returns it.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", "../../pkgbuild/testdata/webapp/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dir
}

func runBuild(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"build"}, args...), &out, &errb)
	return out.String(), err
}

func TestBuildCommand(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767323045")
	dir := fixture(t)
	spec := filepath.Join(dir, "package.yaml")

	t.Run("prints the package path", func(t *testing.T) {
		out := t.TempDir()
		got, err := runBuild(t, "--spec", spec, "--out", out)
		if err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(out, "webapp_1.4.0~rc1-3_amd64.deb") + "\n"
		if got != want {
			t.Errorf("stdout %q, want %q", got, want)
		}
		entries, _ := os.ReadDir(out)
		if len(entries) != 1 {
			t.Errorf("out dir holds %d entries, want just the package", len(entries))
		}
	})
	t.Run("--version overrides the spec and is reproducible", func(t *testing.T) {
		out1, out2 := t.TempDir(), t.TempDir()
		p1, err := runBuild(t, "--spec", spec, "--out", out1, "--version", "3.0-1")
		if err != nil {
			t.Fatal(err)
		}
		p2, err := runBuild(t, "--spec", spec, "--out", out2, "--version", "3.0-1")
		if err != nil {
			t.Fatal(err)
		}
		b1, _ := os.ReadFile(strings.TrimSpace(p1))
		b2, _ := os.ReadFile(strings.TrimSpace(p2))
		if filepath.Base(strings.TrimSpace(p1)) != "webapp_3.0-1_amd64.deb" || len(b1) == 0 || !bytes.Equal(b1, b2) {
			t.Errorf("builds %s (%d bytes) and %s (%d bytes) differ", p1, len(b1), p2, len(b2))
		}
	})
	t.Run("version from git describe and BUILD_NUMBER", func(t *testing.T) {
		testenv.NeedTools(t, "git")
		repo := fixture(t)
		os.WriteFile(filepath.Join(repo, "package.yaml"), bytes.Replace(mustRead(t, filepath.Join(repo, "package.yaml")),
			[]byte("version: 2:1.4.0~rc1-3\n"), nil, 1), 0o644)
		git := func(args ...string) {
			cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v: %s", args, err, out)
			}
		}
		git("init", "-q")
		git("add", ".")
		git("commit", "-q", "-m", "one")
		git("tag", "v1.2.3")
		t.Setenv("BUILD_NUMBER", "17")
		out := t.TempDir()
		got, err := runBuild(t, "--spec", filepath.Join(repo, "package.yaml"), "--out", out)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(out, "webapp_1.2.3-17_amd64.deb") + "\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("--nfpm passes an nfpm.yaml through", func(t *testing.T) {
		nf := filepath.Join(dir, "nfpm.yaml")
		os.WriteFile(nf, []byte(`name: tool
arch: amd64
version: 2.5.0
release: 4
maintainer: T <t@example.com>
description: a tool
contents:
  - src: `+filepath.Join(dir, "bin/webapp")+`
    dst: /usr/bin/tool
`), 0o644)
		out := t.TempDir()
		got, err := runBuild(t, "--nfpm", nf, "--out", out)
		if err != nil {
			t.Fatal(err)
		}
		deb := strings.TrimSpace(got)
		if filepath.Base(deb) != "tool_2.5.0-4_amd64.deb" {
			t.Errorf("package %s", deb)
		}
		testenv.NeedTools(t, "dpkg-deb")
		ctl, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version").Output()
		if err != nil || string(ctl) != "Package: tool\nVersion: 2.5.0-4\n" {
			t.Errorf("control: %q %v", ctl, err)
		}
		files, _ := exec.Command("dpkg-deb", "-c", deb).Output()
		if !strings.Contains(string(files), "./usr/bin/tool") || strings.Contains(string(files), "systemd") {
			t.Errorf("contents:\n%s", files)
		}
	})
}

// TestBuildCommandErrors checks bad input fails with a one-line message and
// leaves nothing in the output directory.
func TestBuildCommandErrors(t *testing.T) {
	dir := fixture(t)
	spec := filepath.Join(dir, "package.yaml")
	os.WriteFile(filepath.Join(dir, "Procfile.bad"), []byte("web: /usr/bin/webapp\nworker:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), bytes.Replace(mustRead(t, spec), []byte("procfile: Procfile"), []byte("procfile: Procfile.bad"), 1), 0o644)
	os.WriteFile(filepath.Join(dir, "unreadable.yaml"), []byte("name: [\n"), 0o644)
	// nfpm passes a homepage through as it is; the package read back as
	// publish reads it is refused.
	os.WriteFile(filepath.Join(dir, "inject.yaml"), []byte("name: tool\narch: amd64\nversion: 1.0.0\nmaintainer: T <t@example.com>\n"+
		"description: a tool\nhomepage: \"http://x\\n Version: 99\"\n"), 0o644)
	// A FIFO inside a packaged tree passes the spec check and fails during
	// the build, after the output file was created.
	if err := syscall.Mkfifo(filepath.Join(dir, "static", "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad --version", []string{"--spec", spec, "--version", "1.0 beta"}, nil,
			`--version: "1.0 beta" is not a valid Debian version: it contains whitespace`},
		{"negative --version", []string{"--spec", spec, "--version", "-1"}, nil,
			`--version: "-1" is not a valid Debian version: it must start with a digit`},
		{"Procfile line without a command", []string{"--spec", filepath.Join(dir, "bad.yaml")}, nil,
			filepath.Join(dir, "Procfile.bad") + ":2: worker: no command"},
		{"missing spec", []string{"--spec", filepath.Join(dir, "nope.yaml")}, nil,
			"build: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{"bad YAML", []string{"--spec", filepath.Join(dir, "unreadable.yaml")}, nil,
			filepath.Join(dir, "unreadable.yaml") + ":1: did not find expected node content"},
		{"bad SOURCE_DATE_EPOCH", []string{"--spec", spec}, map[string]string{"SOURCE_DATE_EPOCH": "yesterday"},
			`SOURCE_DATE_EPOCH "yesterday": not a number of seconds since 1970`},
		{"failure while writing the package", []string{"--spec", spec}, nil,
			spec + ": " + filepath.Join(dir, "static", "pipe") + ": not a regular file, directory or symlink"},
		{"--nfpm with --spec", []string{"--nfpm", "x.yaml", "--spec", spec}, nil,
			"build: --nfpm takes the package as it is; drop --spec and --version"},
		{"nfpm.yaml with a two-line homepage", []string{"--nfpm", filepath.Join(dir, "inject.yaml")}, nil,
			`tool_1.0.0_amd64.deb: repo: not a valid .deb: control file: repo: malformed control data: field "Homepage" (line 8): continuation line 9: the field must fit on one line`},
		{"extra argument", []string{"--spec", spec, "extra"}, nil,
			`unknown command "extra" for "pkgbuild build"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			out := filepath.Join(t.TempDir(), "dist")
			stdout, err := runBuild(t, append(tt.args, "--out", out)...)
			if err == nil {
				t.Fatalf("no error; stdout %q", stdout)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n  %s\nwant\n  %s", err, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			entries, _ := os.ReadDir(out)
			if len(entries) != 0 {
				t.Errorf("output directory holds %v", entries)
			}
		})
	}
}

// TestBuildReadsBack: values nfpm writes into the control file as they
// are fail the build when the package, read back as publish reads it, is
// refused; the output directory stays empty.
func TestBuildReadsBack(t *testing.T) {
	dir := fixture(t)
	spec := filepath.Join(dir, "package.yaml")
	// Values the control file takes as they are, checked when the package
	// is read back as publish reads it.
	for name, repl := range map[string][2]string{
		"homepage.yaml": {"homepage: https://example.com/webapp\n", "homepage: example.com\n"},
		"section.yaml":  {"section: web\n", "section: web server\n"},
		"priority.yaml": {"priority: optional\n", "priority: urgent\n"},
	} {
		if !bytes.Contains(mustRead(t, spec), []byte(repl[0])) {
			t.Fatalf("fixture lacks %q", repl[0])
		}
		os.WriteFile(filepath.Join(dir, name), bytes.Replace(mustRead(t, spec), []byte(repl[0]), []byte(repl[1]), 1), 0o644)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"homepage not a URL", []string{"--spec", filepath.Join(dir, "homepage.yaml")}, nil,
			`webapp_1.4.0~rc1-3_amd64.deb: repo: not a valid .deb: control file: repo: malformed control data: field "Homepage" (line 13): "example.com" is not an absolute http(s) URL`},
		{"section syntax", []string{"--spec", filepath.Join(dir, "section.yaml")}, nil,
			`webapp_1.4.0~rc1-3_amd64.deb: repo: not a valid .deb: control file: repo: malformed control data: field "Section" (line 3): "web server" is not a Debian section (like "web" or "contrib/net")`},
		{"priority", []string{"--spec", filepath.Join(dir, "priority.yaml")}, nil,
			`webapp_1.4.0~rc1-3_amd64.deb: repo: not a valid .deb: control file: repo: malformed control data: field "Priority" (line 4): "urgent" is not one of required, important, standard, optional, extra`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "dist")
			if _, err := runBuild(t, append(tt.args, "--out", out)...); err == nil || err.Error() != tt.want {
				t.Errorf("error\n  %v\nwant\n  %s", err, tt.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("output directory holds %v", entries)
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
