package repo_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// TestKeyRotation rotates the signing key of a repository served over HTTP
// while two real apt clients read it: one trusts the keyring the repository
// publishes once the rotation starts (old and new keys, what the keyring
// package ships), the other only the old key it was installed with. The
// first keeps updating through the whole rotation; the second keeps
// updating until the rotation finishes, then fails with apt's NO_PUBKEY.
func TestKeyRotation(t *testing.T) {
	testenv.NeedTools(t, "apt-get", "gpgv")
	ctx := context.Background()
	f := newFixture(t)
	old := f.key
	next := repotest.NewKey(t, t.TempDir(), "")
	f.publish("staging", f.deb("hello", "1.0-1"))
	url := serveUncached(t, f.root)

	// keyringFile writes the repository's trusted keys, as a keyring
	// package would ship them.
	keyringFile := func(t *testing.T) string {
		t.Helper()
		k, _, err := f.repo.TrustedKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := k.Write(&b); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "trusted.gpg")
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldOnly := testenv.NewApt(t, url, "staging", old.Keyring)
	update := func(t *testing.T, a *testenv.Apt, who string) {
		t.Helper()
		if out, err := a.Update(ctx); err != nil {
			t.Fatalf("%s: apt-get update: %v\n%s", who, err, out)
		}
	}
	newest := func(t *testing.T, a *testenv.Apt, want string) {
		t.Helper()
		out, err := a.Run(ctx, "download", "hello")
		if err != nil {
			t.Fatalf("apt-get download: %v\n%s", err, out)
		}
		if _, err := os.Stat(a.Downloaded("hello_" + want + "_amd64.deb")); err != nil {
			t.Fatalf("apt-get download did not fetch hello %s:\n%s", want, out)
		}
	}
	// gpgv reports whether gpgv finds a good signature by a key of keyring
	// (it exits non-zero when any other signature's key is missing, which
	// apt tolerates: apt looks for a good signature, as here).
	gpgv := func(t *testing.T, keyring string, args ...string) error {
		t.Helper()
		out, _ := command("gpgv", append([]string{"--status-fd", "1", "--keyring", keyring}, args...)...)
		if !strings.Contains(out, "[GNUPG:] GOODSIG ") {
			return errors.New("no good signature: " + out)
		}
		return nil
	}
	distFile := func(name string) string { return filepath.Join(f.root, "dists", "staging", name) }

	rotating, err := f.repo.RotateKey(ctx, next.Signer)
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if strings.Join(rotating, " ") != "staging" {
		t.Errorf("RotateKey signed %v, want [staging]", rotating)
	}
	both := testenv.NewApt(t, url, "staging", keyringFile(t))

	t.Run("during the rotation both keys sign", func(t *testing.T) {
		data, err := os.ReadFile(distFile("InRelease"))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(data, []byte("-----BEGIN PGP SIGNATURE-----")); n != 1 {
			t.Errorf("InRelease has %d signature blocks, want one block with two signatures", n)
		}
		k, _, _ := f.repo.TrustedKeys(ctx)
		sigs, err := k.Signatures(data)
		if err != nil || len(sigs) != 2 || !sigs[0].Good || !sigs[1].Good {
			t.Fatalf("signatures %+v, %v; want two good ones", sigs, err)
		}
		for _, key := range []repotest.Key{old, next} {
			if err := gpgv(t, key.Keyring, distFile("InRelease")); err != nil {
				t.Errorf("gpgv InRelease with one key: %v", err)
			}
			if err := gpgv(t, key.Keyring, distFile("Release.gpg"), distFile("Release")); err != nil {
				t.Errorf("gpgv Release.gpg with one key: %v", err)
			}
		}
		update(t, both, "host with the keyring package")
		update(t, oldOnly, "host with the old key only")
	})

	t.Run("a publish with the old key during the rotation", func(t *testing.T) {
		f.publish("staging", f.deb("hello", "1.1-1"))
		update(t, both, "host with the keyring package")
		newest(t, both, "1.1-1")
		update(t, oldOnly, "host with the old key only")
	})

	finished, err := f.repo.FinishRotation(ctx, next.Signer)
	if err != nil {
		t.Fatalf("FinishRotation: %v", err)
	}
	if strings.Join(finished, " ") != "staging" {
		t.Errorf("FinishRotation signed %v, want [staging]", finished)
	}

	t.Run("after the finish only the new key signs and is trusted", func(t *testing.T) {
		k, _, _ := f.repo.TrustedKeys(ctx)
		if got := strings.Join(k.Fingerprints(), " "); got != next.Signer.Fingerprint() {
			t.Errorf("trusted keys %s, want only the new key %s", got, next.Signer.Fingerprint())
		}
		if err := gpgv(t, old.Keyring, distFile("InRelease")); err == nil {
			t.Error("the old key still verifies InRelease")
		}
		if err := gpgv(t, next.Keyring, distFile("Release.gpg"), distFile("Release")); err != nil {
			t.Errorf("gpgv Release.gpg with the new key: %v", err)
		}
	})
	t.Run("the host with the keyring package keeps updating", func(t *testing.T) {
		f.repo.Signer = next.Signer
		f.publish("staging", f.deb("hello", "1.2-1"))
		update(t, both, "host with the keyring package")
		newest(t, both, "1.2-1")
	})
	t.Run("the host with the old key alone fails with NO_PUBKEY", func(t *testing.T) {
		out, err := oldOnly.Update(ctx)
		if err == nil {
			t.Fatalf("apt-get update succeeded:\n%s", out)
		}
		if !strings.Contains(out, "NO_PUBKEY") {
			t.Errorf("apt-get update failed without NO_PUBKEY:\n%s", out)
		}
	})
	t.Run("the old key can no longer change the repository", func(t *testing.T) {
		before := treeHash(t, f.root)
		f.repo.Signer = old.Signer
		_, err := f.repo.Publish(ctx, "staging", "", []string{f.deb("hello", "1.3-1")})
		if !errors.Is(err, repo.ErrUntrustedKey) {
			t.Fatalf("publish with the old key: %v, want ErrUntrustedKey", err)
		}
		if treeHash(t, f.root) != before {
			t.Error("the refused publish wrote to the repository")
		}
		f.repo.Signer = next.Signer
	})
	t.Run("verify reports the signer", func(t *testing.T) {
		r := *f.repo
		r.Keyring = next.Signer.Keyring()
		rep, err := r.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sigs := rep.Signers["staging"]
		if len(sigs) != 1 || sigs[0].Fingerprint != next.Signer.Fingerprint() || !sigs[0].Good {
			t.Errorf("signers %+v, want the new key alone", sigs)
		}
	})
}

// TestRotationFinishSignsOldOnlyDists: a dist signed with the old key alone
// during the rotation (a publish from a pipeline not yet given the new key,
// which creates a dist) is signed with the new key by the finish.
func TestRotationFinishSignsOldOnlyDists(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	old, next := f.key, repotest.NewKey(t, t.TempDir(), "")
	f.publish("staging", f.deb("hello", "1.0-1"))
	if _, err := f.repo.RotateKey(ctx, next.Signer); err != nil {
		t.Fatal(err)
	}
	f.publish("production", f.deb("hello", "1.0-1")) // the old key alone
	if _, err := f.repo.FinishRotation(ctx, next.Signer); err != nil {
		t.Fatalf("FinishRotation: %v", err)
	}
	r := *f.repo
	r.Signer, r.Keyring = nil, next.Signer.Keyring()
	if _, err := r.Verify(ctx); err != nil {
		t.Errorf("verify with the new key after the finish: %v", err)
	}
	r.Keyring = old.Signer.Keyring()
	if _, err := r.Verify(ctx); err == nil {
		t.Error("the old key still verifies every dist after the finish")
	}
}

// TestVerifyWarnsOfExpiringKey: a dist signed with a key that expires in
// less than 30 days verifies with a warning naming the key and the date.
func TestVerifyWarnsOfExpiringKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	life := uint32((10 * 24 * time.Hour).Seconds())
	e, err := openpgp.NewEntity("expiring", "", "expiring@aptfleet.invalid",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, DefaultHash: crypto.SHA512, KeyLifetimeSecs: life})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	aw, _ := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err := e.SerializePrivate(aw, nil); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	s, err := repo.ParseSigner(b.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.repo.Signer = s
	f.publish("staging", f.deb("hello", "1.0-1"))
	rep, err := f.repo.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := "dists/staging/InRelease: signing key " + s.Fingerprint() + " expires "
	found := false
	for _, w := range rep.Warnings {
		found = found || strings.HasPrefix(w, want) && strings.Contains(w, "(in less than 30 days)")
	}
	if !found {
		t.Errorf("warnings %q lack %q", rep.Warnings, want+"... (in less than 30 days)")
	}
	if sigs := rep.Signers["staging"]; len(sigs) != 1 || sigs[0].KeyExpires.IsZero() {
		t.Errorf("signers %+v: want one with its expiry", sigs)
	}

	// A key without expiry gives no warning.
	g := newFixture(t)
	g.publish("staging", g.deb("hello", "1.0-1"))
	rep, err = g.repo.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rep.Warnings {
		if strings.Contains(w, "expires") {
			t.Errorf("warning for a key that does not expire: %s", w)
		}
	}
}

// serveUncached serves root over HTTP ignoring apt's If-Modified-Since: the
// file server's dates have one-second resolution, and the steps here change
// InRelease within the second apt last fetched it.
func serveUncached(t *testing.T, root string) string {
	fs := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("If-Modified-Since")
		r.Header.Del("If-None-Match")
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}
