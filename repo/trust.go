package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/internal/debian"
)

// TrustedKeysKey is the object holding the public keys the repository
// trusts to sign its dists (a binary keyring, which apt also accepts as
// signed-by=). The first change to a repository writes it with its
// signing key; only Repo.NewKey (publish --new-key) and key rotation add
// keys to it.
const TrustedKeysKey = "keys/trusted.gpg"

// ErrUntrustedKey: a change was asked with a signing key the repository
// does not trust, or that did not sign the dist it would change. Nothing
// was written.
var ErrUntrustedKey = errors.New("repo: signing key not trusted by this repository")

// TrustedKeys returns the keys the repository trusts and the ETag of
// TrustedKeysKey; an empty keyring and ETag "" when it was never written.
func (r *Repo) TrustedKeys(ctx context.Context) (Keyring, string, error) {
	data, o, err := getAll(ctx, r.Store, TrustedKeysKey)
	if errors.Is(err, ErrNotFound) {
		return Keyring{}, "", nil
	}
	if err != nil {
		return Keyring{}, "", fmt.Errorf("read %s: %w", TrustedKeysKey, err)
	}
	k, err := ParseKeyring(data)
	if err != nil {
		return Keyring{}, "", fmt.Errorf("%s: %w", TrustedKeysKey, err)
	}
	return k, o.ETag, nil
}

// Fingerprints lists the keyring's primary key fingerprints, upper-case hex.
func (k Keyring) Fingerprints() []string {
	var out []string
	for _, e := range k.entities {
		out = append(out, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))
	}
	return out
}

// has reports whether the keyring holds the key with fingerprint fp.
func (k Keyring) has(fp string) bool { return slices.Contains(k.Fingerprints(), fp) }

// checkSigner refuses, before anything is written, a change signed with a
// key the repository does not trust. dist is the dist the change writes
// ("" for a change of every dist, like prune): when it exists, its
// InRelease must verify with the signing key. A new dist needs a trusted
// key, or Repo.NewKey, which adds the signing key to the trusted keys. In
// a repository with no trusted keys recorded (new, or older than the
// record) every dist must verify with the signing key, which a change
// that may create a dist (create) then records.
func (r *Repo) checkSigner(ctx context.Context, dist string, create bool) error {
	if r.Signer == nil {
		return ErrNoSigner
	}
	if err := r.config().checkRelease(); err != nil {
		return err
	}
	// Concurrent first publishers race to record their key: the losers
	// check again against what the winner recorded.
	for attempt := 1; ; attempt++ {
		err := r.checkSignerOnce(ctx, dist, create)
		if !errors.Is(err, ErrPrecondition) || attempt == 5 {
			return err
		}
	}
}

func (r *Repo) checkSignerOnce(ctx context.Context, dist string, create bool) error {
	fp := r.Signer.Fingerprint()
	own := r.Signer.Keyring()
	own.entities = append(own.entities, r.alsoAccept.entities...)
	trusted, etag, err := r.TrustedKeys(ctx)
	if err != nil {
		return err
	}
	exists := false
	if dist != "" {
		data, _, err := getAll(ctx, r.Store, inReleaseKey(dist))
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return fmt.Errorf("read %s: %w", inReleaseKey(dist), err)
		default:
			exists = true
			if _, err := own.VerifyInRelease(data); err != nil {
				return fmt.Errorf("%w: %s is not signed by key %s (%v)", ErrUntrustedKey, inReleaseKey(dist), fp, err)
			}
		}
	}
	if etag != "" {
		// Every key the change signs with must be trusted.
		for _, f := range r.Signer.Fingerprints() {
			if !trusted.has(f) {
				fp = f
			}
		}
		if trusted.has(fp) {
			return nil
		}
		if r.NewKey && create && dist != "" && !exists {
			return r.recordKey(ctx, trusted, etag)
		}
		why := "pass --new-key to sign a new dist with it"
		if dist == "" || exists {
			why = "rotate to it with `pkgbuild key rotate`"
		}
		return fmt.Errorf("%w: key %s is not among the repository's trusted keys (%s in %s); %s",
			ErrUntrustedKey, fp, strings.Join(trusted.Fingerprints(), ", "), TrustedKeysKey, why)
	}
	// No record yet: every existing dist must verify with this key.
	dists, err := r.Dists(ctx)
	if err != nil {
		return err
	}
	for _, d := range dists {
		data, _, err := getAll(ctx, r.Store, inReleaseKey(d))
		if err != nil {
			return fmt.Errorf("read %s: %w", inReleaseKey(d), err)
		}
		if _, err := own.VerifyInRelease(data); err != nil {
			return fmt.Errorf("%w: %s is not signed by key %s, and the repository records no trusted keys (%v)", ErrUntrustedKey, inReleaseKey(d), fp, err)
		}
	}
	if !create {
		return nil
	}
	return r.recordKey(ctx, Keyring{}, "")
}

// recordKey adds the signing key to the trusted keys, conditional on
// their ETag ("" creates them), so two writers cannot lose a key.
func (r *Repo) recordKey(ctx context.Context, trusted Keyring, etag string) error {
	return r.writeTrusted(ctx, Keyring{entities: append(slices.Clone(trusted.entities), r.Signer.entity)}, etag)
}

// writeTrusted replaces the trusted keys, conditional on etag.
func (r *Repo) writeTrusted(ctx context.Context, k Keyring, etag string) error {
	var b bytes.Buffer
	if err := k.Write(&b); err != nil {
		return err
	}
	opts := PutOptions{IfMatch: etag, IfNoneMatch: etag == "", ContentType: "application/pgp-keys"}
	if _, err := r.Store.Put(ctx, TrustedKeysKey, bytes.NewReader(b.Bytes()), int64(b.Len()), opts); err != nil {
		return fmt.Errorf("upload %s: %w", TrustedKeysKey, err)
	}
	return nil
}

// DistInfo describes one dist for `pkgbuild dist list`.
type DistInfo struct {
	Name     string    `json:"name"`
	Date     time.Time `json:"date"`
	Origin   string    `json:"origin"`
	Label    string    `json:"label"`
	Packages int       `json:"packages"` // index entries, every architecture
	Problem  string    `json:"problem,omitempty"`
}

// DistInfos describes every dist. A dist that cannot be read is listed
// with its problem.
func (r *Repo) DistInfos(ctx context.Context) ([]DistInfo, error) {
	dists, err := r.Dists(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DistInfo, 0, len(dists))
	for _, name := range dists {
		d, err := readDist(ctx, r.Store, r.keyring(), name, func(string) bool { return true }, false, nil)
		if err != nil {
			out = append(out, DistInfo{Name: name, Problem: err.Error()})
			continue
		}
		out = append(out, DistInfo{Name: name, Date: d.Release.Date, Origin: d.Release.Origin, Label: d.Release.Label, Packages: len(d.Packages)})
	}
	return out, nil
}

// DeleteDist removes dist: InRelease first (from then on the dist does
// not exist for apt, the agent or any command), then its derived files and
// by-hash indexes. Pool files only it referenced go at the next prune. A
// dist with packages is refused unless force is set; the signing key must
// be one that signed it.
func (r *Repo) DeleteDist(ctx context.Context, dist string, force bool) ([]string, error) {
	if err := debian.CheckDist(dist); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	if err := r.checkSigner(ctx, dist, false); err != nil {
		return nil, err
	}
	st, err := r.load(ctx, dist)
	if err != nil {
		return nil, err
	}
	if len(st.pkgs) > 0 && !force {
		return nil, fmt.Errorf("%s has %d index entries; hosts reading it would lose their packages (pass --force to delete it anyway)", dist, len(st.pkgs))
	}
	keys := []string{inReleaseKey(dist)}
	err = r.Store.List(ctx, "dists/"+dist+"/", func(o Object) error {
		if o.Key != inReleaseKey(dist) {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dists/%s/: %w", dist, err)
	}
	for i, k := range keys {
		if err := r.Store.Delete(ctx, k); err != nil {
			return keys[:i], fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return keys, nil
}
