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
