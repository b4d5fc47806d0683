package repo

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Errors from loading keys and checking signatures.
var (
	ErrBadKey        = errors.New("repo: unusable signing key")
	ErrBadPassphrase = errors.New("repo: wrong passphrase for signing key")
	ErrBadSignature  = errors.New("repo: bad signature")
)

// Signer signs Release files with one OpenPGP key.
type Signer struct {
	entity *openpgp.Entity
	key    *packet.PrivateKey
	config *packet.Config
}

// signConfig makes every signature use SHA-512 (apt rejects SHA-1).
func signConfig(now func() time.Time) *packet.Config {
	return &packet.Config{DefaultHash: crypto.SHA512, Time: now}
}

// LoadSigner reads an armored (or binary) private key from file and unlocks
// it with passphrase. It fails with a one-line error naming file when the
// file is missing, holds no private signing key, or the passphrase is wrong.
func LoadSigner(file string, passphrase []byte) (*Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	s, err := ParseSigner(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", file, err)
	}
	return s, nil
}

// ParseSigner is LoadSigner on the key's bytes.
func ParseSigner(data, passphrase []byte) (*Signer, error) {
	els, err := readKeyRing(data)
	if err != nil {
		return nil, err
	}
	for _, e := range els {
		if e.PrivateKey == nil {
			continue
		}
		k, ok := e.SigningKey(time.Now())
		if !ok || k.PrivateKey == nil {
			continue
		}
		if k.PrivateKey.Encrypted {
			if len(passphrase) == 0 {
				return nil, fmt.Errorf("%w: the key is encrypted and no passphrase was given (APTFLEET_SIGNING_KEY_PASSPHRASE)", ErrBadPassphrase)
			}
			if err := k.PrivateKey.Decrypt(passphrase); err != nil {
				return nil, ErrBadPassphrase
			}
		}
		return &Signer{entity: e, key: k.PrivateKey, config: signConfig(time.Now)}, nil
	}
	return nil, fmt.Errorf("%w: no private key that can sign", ErrBadKey)
}

func readKeyRing(data []byte) (openpgp.EntityList, error) {
	var els openpgp.EntityList
	var err error
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		els, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		els, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	if len(els) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrBadKey)
	}
	return els, nil
}

// Keyring returns the signer's public key, for verifying what it signed.
func (s *Signer) Keyring() Keyring { return Keyring{entities: openpgp.EntityList{s.entity}} }

// Fingerprint is the signing key's fingerprint in upper-case hex.
func (s *Signer) Fingerprint() string { return fmt.Sprintf("%X", s.key.Fingerprint) }

// Sign returns the clearsigned InRelease and the armored detached Release.gpg
// signature of the same release bytes.
func (s *Signer) Sign(release []byte) (inRelease, detached []byte, err error) {
	var in bytes.Buffer
	w, err := clearsign.Encode(&in, s.key, s.config)
	if err != nil {
		return nil, nil, fmt.Errorf("clearsign: %w", err)
	}
	if _, err := w.Write(release); err != nil {
		return nil, nil, fmt.Errorf("clearsign: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, nil, fmt.Errorf("clearsign: %w", err)
	}
	inRelease, err = withArmorChecksum(in.Bytes())
	if err != nil {
		return nil, nil, err
	}
	var det bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&det, s.entity, bytes.NewReader(release), s.config); err != nil {
		return nil, nil, fmt.Errorf("sign Release: %w", err)
	}
	det.WriteByte('\n')
	return inRelease, det.Bytes(), nil
}

// WritePublicKey writes the signer's public key, armored when armored is set
// (for signed-by= files ending in .asc) or binary (for .gpg keyrings).
func (s *Signer) WritePublicKey(w io.Writer, armored bool) error {
	return writePublic(w, s.entity, armored)
}

func writePublic(w io.Writer, e *openpgp.Entity, armored bool) error {
	if !armored {
		return e.Serialize(w)
	}
	aw, err := armor.Encode(w, openpgp.PublicKeyType, nil)
	if err != nil {
		return err
	}
	if err := e.Serialize(aw); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// GenerateKey creates an Ed25519 signing key for a repository and writes it
// armored to w, encrypted with passphrase unless it is empty.
func GenerateKey(w io.Writer, name, email string, passphrase []byte) error {
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, DefaultHash: crypto.SHA512}
	e, err := openpgp.NewEntity(name, "apt repository signing key", email, cfg)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	if len(passphrase) > 0 {
		if err := e.EncryptPrivateKeys(passphrase, cfg); err != nil {
			return fmt.Errorf("encrypt key: %w", err)
		}
	}
	aw, err := armor.Encode(w, openpgp.PrivateKeyType, nil)
	if err != nil {
		return err
	}
	if err := e.SerializePrivateWithoutSigning(aw, nil); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := aw.Close(); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// Keyring holds the public keys a repository's signatures are checked with.
type Keyring struct {
	entities openpgp.EntityList
}

// ParseKeyring reads armored or binary public (or private) keys.
func ParseKeyring(data []byte) (Keyring, error) {
	els, err := readKeyRing(data)
	if err != nil {
		return Keyring{}, err
	}
	return Keyring{entities: els}, nil
}

// LoadKeyring reads a keyring file (armored .asc or binary .gpg).
func LoadKeyring(file string) (Keyring, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Keyring{}, fmt.Errorf("keyring: %w", err)
	}
	k, err := ParseKeyring(data)
	if err != nil {
		return Keyring{}, fmt.Errorf("keyring %s: %w", file, err)
	}
	return k, nil
}

// Write writes the keyring's public keys in binary form (a keyring apt
// accepts as signed-by=FILE.gpg).
func (k Keyring) Write(w io.Writer) error {
	for _, e := range k.entities {
		if err := writePublic(w, e, false); err != nil {
			return err
		}
	}
	return nil
}

// VerifyInRelease checks a clearsigned InRelease against the keyring and
// returns the signed Release text.
func (k Keyring) VerifyInRelease(data []byte) ([]byte, error) {
	if len(k.entities) == 0 {
		return nil, fmt.Errorf("%w: no keys to check it with", ErrBadSignature)
	}
	b, _ := clearsign.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: not a clearsigned message", ErrBadSignature)
	}
	if _, err := b.VerifySignature(k.entities, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return b.Plaintext, nil
}

// VerifyDetached checks a detached (armored or binary) signature of data.
func (k Keyring) VerifyDetached(data, sig []byte) error {
	if len(k.entities) == 0 {
		return fmt.Errorf("%w: no keys to check it with", ErrBadSignature)
	}
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN")) {
		_, err = openpgp.CheckArmoredDetachedSignature(k.entities, bytes.NewReader(data), bytes.NewReader(sig), nil)
	} else {
		_, err = openpgp.CheckDetachedSignature(k.entities, bytes.NewReader(data), bytes.NewReader(sig), nil)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// withArmorChecksum re-armors a clearsigned message's signature with the
// CRC-24 line, which the clearsign package leaves out and gpg 2.2 (gpgv,
// hence apt on Debian 12) needs: without it gpgv reports the good
// signature but also a bad packet and exits 2.
func withArmorChecksum(msg []byte) ([]byte, error) {
	b, _ := clearsign.Decode(msg)
	if b == nil {
		return nil, errors.New("clearsign: cannot decode own output")
	}
	sig, err := io.ReadAll(b.ArmoredSignature.Body)
	if err != nil {
		return nil, fmt.Errorf("clearsign: %w", err)
	}
	i := bytes.LastIndex(msg, []byte("-----BEGIN PGP SIGNATURE-----"))
	if i < 0 {
		return nil, errors.New("clearsign: no signature block")
	}
	out := bytes.NewBuffer(append([]byte(nil), msg[:i]...))
	aw, err := armor.Encode(out, "PGP SIGNATURE", nil)
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(sig); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
