package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/aptfleet/aptfleet/repo"
)

// keys are the signing keys of the two tools: aptfleet's own Ed25519 key
// (armored, as `pkgbuild publish --key` takes it) and a GnuPG RSA key in
// binary keyrings for aptly's internal OpenPGP provider.
type keys struct {
	aptfleet                 string
	aptlyPublic, aptlySecret string
	aptlyKeyID               string
}

func makeKeys(dir string) (*keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	k := &keys{
		aptfleet:    filepath.Join(dir, "aptfleet.asc"),
		aptlyPublic: filepath.Join(dir, "aptly-pub.gpg"),
		aptlySecret: filepath.Join(dir, "aptly-sec.gpg"),
	}
	f, err := os.Create(k.aptfleet)
	if err != nil {
		return nil, err
	}
	if err := repo.GenerateKey(f, "aptfleet bench", "bench@example.com", nil); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}

	// aptly's key comes from GnuPG, as aptly users' keys do (aptly's
	// internal OpenPGP reader does not take every key go-crypto writes).
	home := filepath.Join(dir, "gnupg")
	if err := os.RemoveAll(home); err != nil {
		return nil, err
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		return nil, err
	}
	defer exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
	gpg := func(args ...string) ([]byte, error) {
		out, err := exec.Command("gpg", append([]string{"--batch", "--homedir", home}, args...)...).Output()
		if err != nil {
			return nil, fmt.Errorf("gpg %s: %w", strings.Join(args, " "), err)
		}
		return out, nil
	}
	if _, err := gpg("--passphrase", "", "--quick-gen-key", "aptly bench <bench@example.com>", "rsa2048", "sign", "never"); err != nil {
		return nil, err
	}
	list, err := gpg("--with-colons", "--list-keys")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(list), "\n") {
		if f := strings.Split(line, ":"); f[0] == "pub" && len(f) > 4 {
			k.aptlyKeyID = f[4]
		}
	}
	if k.aptlyKeyID == "" {
		return nil, fmt.Errorf("gpg: no key listed after generating one")
	}
	pub, err := gpg("--export", k.aptlyKeyID)
	if err != nil {
		return nil, err
	}
	sec, err := gpg("--export-secret-keys", k.aptlyKeyID)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(k.aptlyPublic, pub, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(k.aptlySecret, sec, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}
