// Package debs builds small .deb files for tests and benchmarks, with nfpm,
// fast enough for thousands. Any package's tests can import it (the
// repository's own test helpers live under repo/internal and cannot be).
package debs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Spec describes a test package.
type Spec struct {
	Name    string
	Version string
	Arch    string // default "amd64"
	Depends []string
	// Payload is written to /usr/share/<name>/payload; default
	// "<name> <version>\n", so two versions differ in content.
	Payload string
}

// mtime is stamped on every package, so the same Spec always yields the
// same bytes.
var mtime = time.Unix(1700000000, 0).UTC()

// FileName is the conventional <name>_<version>_<arch>.deb for s.
func (s Spec) FileName() string {
	return fmt.Sprintf("%s_%s_%s.deb", s.Name, s.Version, s.arch())
}

func (s Spec) arch() string {
	if s.Arch == "" {
		return "amd64"
	}
	return s.Arch
}

// Build writes the .deb built from s to w.
func Build(w io.Writer, s Spec) error {
	if s.Payload == "" {
		s.Payload = s.Name + " " + s.Version + "\n"
	}
	src, err := os.CreateTemp("", "debs-payload-*")
	if err != nil {
		return err
	}
	defer os.Remove(src.Name())
	if _, err := src.WriteString(s.Payload); err != nil {
		src.Close()
		return err
	}
	if err := src.Close(); err != nil {
		return err
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: s.Name, Arch: s.arch(), Version: s.Version, VersionSchema: "none",
		Maintainer: "aptfleet tests <tests@aptfleet.invalid>", Description: "test package " + s.Name,
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Depends: s.Depends,
			Contents: files.Contents{{
				Source: src.Name(), Destination: "/usr/share/" + s.Name + "/payload",
				FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: mtime},
			}},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("prepare %s: %w", s.Name, err)
	}
	if err := deb.Default.Package(info, w); err != nil {
		return fmt.Errorf("build %s: %w", s.Name, err)
	}
	return nil
}

// WriteFile builds s into the file path.
func WriteFile(path string, s Spec) error {
	var b bytes.Buffer
	if err := Build(&b, s); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// Write builds s into dir/<name>_<version>_<arch>.deb and returns its path;
// a failure fails t.
func Write(t testing.TB, dir string, s Spec) string {
	t.Helper()
	p := filepath.Join(dir, s.FileName())
	if err := WriteFile(p, s); err != nil {
		t.Fatal(err)
	}
	return p
}
