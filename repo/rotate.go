package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// RotateKey starts replacing the repository's signing key (r.Signer) with
// next: it adds next to the trusted keys, then signs every dist again with
// both keys (one clearsigned InRelease carrying both signatures, both in
// Release.gpg). A client that trusts either key keeps reading the
// repository. It returns the dists it signed. Running it again is harmless.
func (r *Repo) RotateKey(ctx context.Context, next *Signer) ([]string, error) {
	if r.Signer == nil || next == nil {
		return nil, ErrNoSigner
	}
	if slices.Contains(r.Signer.Fingerprints(), next.Fingerprint()) {
		return nil, fmt.Errorf("the new key %s is the current key", next.Fingerprint())
	}
	if err := r.checkSigner(ctx, "", false); err != nil {
		return nil, err
	}
	if err := r.editTrusted(ctx, func(k Keyring) Keyring {
		for _, s := range append(r.Signer.all(), next) {
			if !k.has(s.Fingerprint()) {
				k.entities = append(slices.Clone(k.entities), s.entity)
			}
		}
		return k
	}); err != nil {
		return nil, err
	}
	both := *r
	both.Signer = Combine(r.Signer, next)
	both.Keyring = both.Signer.Keyring()
	return both.resignAll(ctx)
}

// FinishRotation ends a rotation RotateKey started: it signs every dist with
// next alone and drops r.Signer's key from the trusted keys. From then on a
// client that trusts only the old key fails (apt: NO_PUBKEY), and the old key
// can no longer change the repository. A dist signed with the old key alone
// since the rotation began (a publish with it) is signed with next too.
func (r *Repo) FinishRotation(ctx context.Context, next *Signer) ([]string, error) {
	if r.Signer == nil || next == nil {
		return nil, ErrNoSigner
	}
	old := r.Signer.Fingerprint()
	if old == next.Fingerprint() {
		return nil, fmt.Errorf("the new key %s is the current key", old)
	}
	trusted, _, err := r.TrustedKeys(ctx)
	if err != nil {
		return nil, err
	}
	if !trusted.has(next.Fingerprint()) {
		return nil, fmt.Errorf("%w: the new key %s is not among the trusted keys; run `pkgbuild key rotate` without --finish first", ErrUntrustedKey, next.Fingerprint())
	}
	if !trusted.has(old) {
		// A finish that ran before: the old key no longer proves anything.
		r.log().Info("the old key is no longer trusted; signing every dist with the new key", "key", old)
	}
	// The new key signs; either key's signature is accepted on what it
	// re-signs (the old one was trusted when it signed).
	nr := *r
	nr.Signer = next
	nr.Keyring = Combine(next, r.Signer).Keyring()
	nr.alsoAccept = r.Signer.Keyring()
	dists, err := nr.resignAll(ctx)
	if err != nil {
		return dists, err
	}
	if err := r.editTrusted(ctx, func(k Keyring) Keyring {
		k.entities = slices.DeleteFunc(slices.Clone(k.entities), func(e *openpgp.Entity) bool {
			return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) == old
		})
		return k
	}); err != nil {
		return dists, err
	}
	// A publish with the old key that checked before the drop may have
	// committed after the pass above: sign what the new key cannot verify.
	for _, d := range dists {
		data, _, err := getAll(ctx, r.Store, inReleaseKey(d))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return dists, fmt.Errorf("read %s: %w", inReleaseKey(d), err)
		}
		if _, err := next.Keyring().VerifyInRelease(data); err == nil {
			continue
		}
		if _, err := nr.Resign(ctx, d); err != nil {
			return dists, err
		}
	}
	return dists, nil
}

// resignAll signs every dist again with r.Signer.
func (r *Repo) resignAll(ctx context.Context) ([]string, error) {
	dists, err := r.Dists(ctx)
	if err != nil {
		return nil, err
	}
	for i, d := range dists {
		if _, err := r.Resign(ctx, d); err != nil {
			return dists[:i], fmt.Errorf("sign %s: %w", d, err)
		}
	}
	return dists, nil
}

// editTrusted rewrites the trusted keys with edit, conditional on their
// ETag, re-reading when another writer changed them first. A repository
// that records none yet starts from the signing key.
func (r *Repo) editTrusted(ctx context.Context, edit func(Keyring) Keyring) error {
	for attempt := 1; ; attempt++ {
		k, etag, err := r.TrustedKeys(ctx)
		if err != nil {
			return err
		}
		if etag == "" {
			k = r.Signer.Keyring()
		}
		err = r.writeTrusted(ctx, edit(k), etag)
		if !errors.Is(err, ErrPrecondition) || attempt == 5 {
			return err
		}
	}
}
