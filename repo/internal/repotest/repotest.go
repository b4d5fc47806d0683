// Package repotest builds what the repository's tests need: small .deb
// files (with nfpm, fast enough for thousands), signing keys, and an
// isolated apt-get that reads a repository served over HTTP.
package repotest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/aptfleet/aptfleet/repo"
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

// Deb returns the bytes of a .deb built from s. The same Spec always yields
// the same bytes.
func Deb(s Spec) ([]byte, error) {
	if s.Arch == "" {
		s.Arch = "amd64"
	}
	if s.Payload == "" {
		s.Payload = s.Name + " " + s.Version + "\n"
	}
	src, err := os.CreateTemp("", "repotest-payload-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(src.Name())
	if _, err := src.WriteString(s.Payload); err != nil {
		return nil, err
	}
	src.Close()
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: s.Name, Arch: s.Arch, Version: s.Version, VersionSchema: "none",
		Maintainer: "aptfleet tests <tests@aptfleet.invalid>", Description: "test package " + s.Name,
		MTime: time.Unix(1700000000, 0).UTC(),
		Overridables: nfpm.Overridables{
			Depends: s.Depends,
			Contents: files.Contents{{
				Source: src.Name(), Destination: "/usr/share/" + s.Name + "/payload",
				FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: time.Unix(1700000000, 0).UTC()},
			}},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", s.Name, err)
	}
	var b bytes.Buffer
	if err := deb.Default.Package(info, &b); err != nil {
		return nil, fmt.Errorf("build %s: %w", s.Name, err)
	}
	return b.Bytes(), nil
}

// WriteDeb builds s into dir/<name>_<version>_<arch>.deb and returns its path.
func WriteDeb(t testing.TB, dir string, s Spec) string {
	t.Helper()
	b, err := Deb(s)
	if err != nil {
		t.Fatal(err)
	}
	arch := s.Arch
	if arch == "" {
		arch = "amd64"
	}
	p := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", s.Name, s.Version, arch))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Key is a generated signing key.
type Key struct {
	Signer  *repo.Signer
	File    string // armored private key
	Keyring string // binary public keyring, for apt's signed-by=
	Pass    string
}

// NewKey generates a signing key protected by pass (none when empty) and
// writes it and its public keyring into dir.
func NewKey(t testing.TB, dir, pass string) Key {
	t.Helper()
	var b bytes.Buffer
	if err := repo.GenerateKey(&b, "aptfleet test", "repo@aptfleet.invalid", []byte(pass)); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "key-*.asc")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b.Bytes())
	f.Close()
	s, err := repo.ParseSigner(b.Bytes(), []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := s.WritePublicKey(&pub, false); err != nil {
		t.Fatal(err)
	}
	kr := f.Name() + ".gpg"
	if err := os.WriteFile(kr, pub.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return Key{Signer: s, File: f.Name(), Keyring: kr, Pass: pass}
}
