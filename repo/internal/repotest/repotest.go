// Package repotest builds what the repository's tests need besides .deb
// files (internal/testenv/debs builds those) and an isolated apt-get
// (internal/testenv.Apt): signing keys.
package repotest

import (
	"bytes"
	"os"
	"testing"

	"github.com/aptfleet/aptfleet/repo"
)

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
