package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/aptfleet/aptfleet/repo"
)

// keys are the signing keys of the two tools: aptfleet's own Ed25519 key
// (armored, as `pkgbuild publish --key` takes it) and an RSA key in binary
// keyrings for aptly's internal OpenPGP provider.
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

	e, err := openpgp.NewEntity("aptly bench", "", "bench@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048})
	if err != nil {
		return nil, err
	}
	k.aptlyKeyID = fmt.Sprintf("%016X", e.PrimaryKey.KeyId)
	sec, err := os.Create(k.aptlySecret)
	if err != nil {
		return nil, err
	}
	defer sec.Close()
	if err := e.SerializePrivate(sec, nil); err != nil {
		return nil, err
	}
	pub, err := os.Create(k.aptlyPublic)
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	if err := e.Serialize(pub); err != nil {
		return nil, err
	}
	return k, nil
}
