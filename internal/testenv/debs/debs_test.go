package debs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
)

// TestWrite checks what dpkg-deb reads from a built package, and that the
// same Spec gives the same bytes.
func TestWrite(t *testing.T) {
	testenv.NeedTools(t, "dpkg-deb")
	dir := t.TempDir()
	s := debs.Spec{Name: "hello", Version: "2:1.0-1", Arch: "arm64", Depends: []string{"libc6 (>= 2.36)"}}
	p := debs.Write(t, dir, s)
	if filepath.Base(p) != "hello_2:1.0-1_arm64.deb" {
		t.Errorf("path %s", p)
	}
	out, err := exec.Command("dpkg-deb", "--show", "--showformat", "${Package} ${Version} ${Architecture} ${Depends}", p).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --show %s: %v: %s", p, err, out)
	}
	if got, want := string(out), "hello 2:1.0-1 arm64 libc6 (>= 2.36)"; got != want {
		t.Errorf("dpkg-deb --show = %q, want %q", got, want)
	}
	x := t.TempDir()
	if err := exec.Command("dpkg-deb", "-x", p, x).Run(); err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile(filepath.Join(x, "usr/share/hello/payload"))
	if err != nil || string(payload) != "hello 2:1.0-1\n" {
		t.Errorf("payload %q, %v", payload, err)
	}
	var again bytes.Buffer
	if err := debs.Build(&again, s); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(p)
	if !bytes.Equal(first, again.Bytes()) {
		t.Error("the same Spec built twice gave different bytes")
	}
}
