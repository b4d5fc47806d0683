package repo

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
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

// Signer signs Release files with one OpenPGP key, or with several at once
// (during a key rotation, see Combine).
type Signer struct {
	entity *openpgp.Entity
	key    *packet.PrivateKey
	config *packet.Config
	// more are the other keys of a combined signer, each signing too.
	more []*Signer
}

// Combine returns a signer that signs with every key of signers: one
// clearsigned InRelease carrying a signature of each, and every signature in
// Release.gpg. Its Fingerprint is the first signer's.
func Combine(signers ...*Signer) *Signer {
	first := *signers[0]
	first.more = nil
	for _, s := range signers[1:] {
		for _, k := range s.all() {
			if !slices.ContainsFunc(first.all(), func(o *Signer) bool { return o.Fingerprint() == k.Fingerprint() }) {
				c := *k
				c.more = nil
				first.more = append(first.more, &c)
			}
		}
	}
	return &first
}

// all lists the signer's keys, the first one first.
func (s *Signer) all() []*Signer {
	one := *s
	one.more = nil
	return append([]*Signer{&one}, s.more...)
}

// Fingerprints lists the fingerprints of every key the signer signs with.
func (s *Signer) Fingerprints() []string {
	var out []string
	for _, k := range s.all() {
		out = append(out, k.Fingerprint())
	}
	return out
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
func (s *Signer) Keyring() Keyring {
	var k Keyring
	for _, o := range s.all() {
		k.entities = append(k.entities, o.entity)
	}
	return k
}

// Fingerprint is the signing key's fingerprint in upper-case hex.
func (s *Signer) Fingerprint() string { return fmt.Sprintf("%X", s.key.Fingerprint) }

// Sign returns the clearsigned InRelease and the armored detached Release.gpg
// signature of the same release bytes.
func (s *Signer) Sign(release []byte) (inRelease, detached []byte, err error) {
	var keys []*packet.PrivateKey
	for _, o := range s.all() {
		keys = append(keys, o.key)
	}
	var in bytes.Buffer
	w, err := clearsign.EncodeMulti(&in, keys, s.config)
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
	// Release.gpg: one armored block holding a signature packet per key.
	var sigs bytes.Buffer
	for _, o := range s.all() {
		if err := openpgp.DetachSign(&sigs, o.entity, bytes.NewReader(release), s.config); err != nil {
			return nil, nil, fmt.Errorf("sign Release: %w", err)
		}
	}
	var det bytes.Buffer
	aw, err := armor.Encode(&det, "PGP SIGNATURE", nil)
	if err != nil {
		return nil, nil, err
	}
	if _, err := aw.Write(sigs.Bytes()); err != nil {
		return nil, nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, nil, err
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

// Signature is one signature of a clearsigned InRelease, as verify reports it.
type Signature struct {
	// KeyID is the issuer's key ID (16 upper-case hex digits).
	KeyID string `json:"key_id"`
	// Fingerprint is the signing key's primary fingerprint, when the
	// keyring holds it.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Good: the signature verifies with the keyring.
	Good bool `json:"good"`
	// Problem says why it does not, when it does not.
	Problem string `json:"problem,omitempty"`
	// KeyExpires is when the signing key expires; zero when it does not.
	KeyExpires time.Time `json:"key_expires,omitzero"`
}

// Signatures checks each signature of a clearsigned message on its own
// against the keyring.
func (k Keyring) Signatures(data []byte) ([]Signature, error) {
	b, _ := clearsign.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: not a clearsigned message", ErrBadSignature)
	}
	raw, err := io.ReadAll(b.ArmoredSignature.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var out []Signature
	or := packet.NewOpaqueReader(bytes.NewReader(raw))
	for {
		op, err := or.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		var one bytes.Buffer
		if err := op.Serialize(&one); err != nil {
			return out, err
		}
		var sig Signature
		if p, err := op.Parse(); err == nil {
			if s, ok := p.(*packet.Signature); ok && s.IssuerKeyId != nil {
				sig.KeyID = fmt.Sprintf("%016X", *s.IssuerKeyId)
			}
		}
		e, err := openpgp.CheckDetachedSignature(k.entities, bytes.NewReader(b.Bytes), &one, nil)
		if err != nil {
			sig.Problem = err.Error()
		} else {
			sig.Good = true
			sig.Fingerprint = fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
			sig.KeyExpires = keyExpiry(e)
		}
		out = append(out, sig)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no signature", ErrBadSignature)
	}
	return out, nil
}

// keyExpiry is when e's primary key expires (its self-signature's key
// lifetime), zero when it does not.
func keyExpiry(e *openpgp.Entity) time.Time {
	id := e.PrimaryIdentity()
	if id == nil || id.SelfSignature == nil || id.SelfSignature.KeyLifetimeSecs == nil || *id.SelfSignature.KeyLifetimeSecs == 0 {
		return time.Time{}
	}
	return e.PrimaryKey.CreationTime.Add(time.Duration(*id.SelfSignature.KeyLifetimeSecs) * time.Second)
}
