package debian_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/internal/testenv"
)

func TestPackageName(t *testing.T) {
	for s, want := range map[string]bool{
		"hello": true, "libc6": true, "g++": true, "python3.11": true, "aptfleet-puller": true, "0ad": true,
		"": false, "a": false, "My_App": false, "Hello": false, "-foo": false, ".foo": false, "foo_bar": false,
		"foo bar": false, "foo:amd64": false,
	} {
		if got := debian.ValidPackageName(s); got != want {
			t.Errorf("ValidPackageName(%q) = %v, want %v", s, got, want)
		}
		if err := debian.CheckPackageName(s); (err == nil) != want || err != nil && !strings.Contains(err.Error(), `"`+s+`"`) {
			t.Errorf("CheckPackageName(%q) = %v", s, err)
		}
	}
}

func TestDist(t *testing.T) {
	for s, want := range map[string]bool{
		"prod": true, "staging-eu": true, "bookworm": true, "main": true, "v1.2_x": true, "Prod": true,
		"": false, "../x": false, "a/b": false, ".hidden": false, "-x": false, "a b": false,
	} {
		if got := debian.ValidDist(s); got != want {
			t.Errorf("ValidDist(%q) = %v, want %v", s, got, want)
		}
		if (debian.CheckDist(s) == nil) != want {
			t.Errorf("CheckDist(%q) disagrees with ValidDist", s)
		}
	}
}

func TestArch(t *testing.T) {
	for s, want := range map[string]bool{
		"all": true, "amd64": true, "arm64": true, "i386": true, "armhf": true, "riscv64": true, "musl-linux-arm64": true,
		"": false, "any": false, "linux-any": false, "x86_64": false, "AMD64": false, "amd64 ": false, "aarch64": false,
	} {
		if got := debian.ValidArch(s); got != want {
			t.Errorf("ValidArch(%q) = %v, want %v", s, got, want)
		}
		if (debian.CheckArch(s) == nil) != want {
			t.Errorf("CheckArch(%q) disagrees with ValidArch", s)
		}
	}
}

// TestArchitecturesDpkg compares the list with the machine's dpkg. When dpkg
// gains an architecture, `go generate ./internal/debian` rewrites arch.go.
func TestArchitecturesDpkg(t *testing.T) {
	testenv.NeedTools(t, "dpkg-architecture")
	out, err := exec.Command("dpkg-architecture", "-L").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"all"}, strings.Fields(string(out))...)
	if got := debian.Architectures(); !slices.Equal(got, want) {
		t.Errorf("Architectures() has %d names, dpkg-architecture -L and \"all\" %d: run go generate ./internal/debian", len(got), len(want))
	}
	for _, a := range want {
		if !debian.ValidArch(a) {
			t.Errorf("ValidArch(%q) = false for a name dpkg knows", a)
		}
	}
}

func TestFieldName(t *testing.T) {
	for s, want := range map[string]bool{
		"Package": true, "Version": true, "X-Aptfleet-Commit": true, "Built-Using": true, "a": true, "Foo!": true,
		"": false, "#Package": false, "-Package": false, "Pack age": false, "Package:": false, "Pack\nage": false,
		"Pack\tage": false, "Paket\u00e9": false,
	} {
		if got := debian.ValidFieldName(s); got != want {
			t.Errorf("ValidFieldName(%q) = %v, want %v", s, got, want)
		}
		if (debian.CheckFieldName(s) == nil) != want {
			t.Errorf("CheckFieldName(%q) disagrees with ValidFieldName", s)
		}
	}
}

func TestSingleLine(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "https://example.com": true, "a b\tc": true,
		"a\nb": false, "a\r": false, "\n": false,
	} {
		if got := debian.SingleLine(s); got != want {
			t.Errorf("SingleLine(%q) = %v, want %v", s, got, want)
		}
		err := debian.CheckSingleLine("homepage", s)
		if (err == nil) != want || err != nil && !strings.HasPrefix(err.Error(), "homepage: ") {
			t.Errorf("CheckSingleLine(homepage, %q) = %v", s, err)
		}
	}
}

func TestSection(t *testing.T) {
	for s, want := range map[string]bool{
		"web": true, "contrib/net": true, "non-free/libs": true, "misc": true,
		"": false, "web server": false, "Web": false, "a/b/c": false, "/web": false, "web\nVersion: 9": false,
	} {
		if got := debian.CheckSection(s) == nil; got != want {
			t.Errorf("CheckSection(%q) ok = %v, want %v", s, got, want)
		}
	}
}

func TestPriority(t *testing.T) {
	for _, p := range debian.Priorities {
		if err := debian.CheckPriority(p); err != nil {
			t.Errorf("CheckPriority(%q) = %v", p, err)
		}
	}
	if err := debian.CheckPriority("urgent"); err == nil || err.Error() != `"urgent" is not one of required, important, standard, optional, extra` {
		t.Errorf("CheckPriority(urgent) = %v", err)
	}
}

func TestHomepage(t *testing.T) {
	for s, want := range map[string]bool{
		"https://example.com": true, "http://example.com/app?x=1": true,
		"example.com": false, "ftp://example.com": false, "https://": false, "https://a.example/x y": false, "https://a\n": false,
	} {
		if got := debian.CheckHomepage(s) == nil; got != want {
			t.Errorf("CheckHomepage(%q) ok = %v, want %v", s, got, want)
		}
	}
}

func TestParseSource(t *testing.T) {
	tests := []struct {
		in, name, version string
		ok                bool
	}{
		{"hello", "hello", "", true},
		{"hello (1.0-1)", "hello", "1.0-1", true},
		{"hello (2:1.0~rc1-3)", "hello", "2:1.0~rc1-3", true},
		{"", "", "", false},
		{"Hello", "", "", false},
		{"hello ()", "", "", false},
		{"hello (1.0", "", "", false},
		{"hello  (1.0)", "", "", false},
		{"hello (1.0 1)", "", "", false},
		{"hello (beta)", "", "", false},
		{"hello (1.0) x", "", "", false},
	}
	for _, tt := range tests {
		name, version, err := debian.ParseSource(tt.in)
		if (err == nil) != tt.ok || name != tt.name || version != tt.version {
			t.Errorf("ParseSource(%q) = %q, %q, %v; want %q, %q, ok=%v", tt.in, name, version, err, tt.name, tt.version, tt.ok)
		}
	}
}
