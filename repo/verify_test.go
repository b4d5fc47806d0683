package repo_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
)

// TestVerifyNoDist: an empty or mistyped repository is a failure, not
// "ok: 0 dists".
func TestVerifyNoDist(t *testing.T) {
	f := newFixture(t)
	rep, err := f.repo.Verify(context.Background())
	if !errors.Is(err, repo.ErrVerify) || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "no dist found") {
		t.Errorf("Verify of an empty repository: %v %+v", err, rep)
	}
	// A typo in the address: a directory with nothing in it.
	s, err := dir.Open(filepath.Join(t.TempDir(), "flet"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&repo.Repo{Store: s, Keyring: f.key.Signer.Keyring()}).Verify(context.Background()); !errors.Is(err, repo.ErrVerify) {
		t.Errorf("Verify of a mistyped directory: %v", err)
	}
}

// TestVerifyBadReleaseGpg: a Release.gpg that does not verify, beside a
// current Release, is a problem (a client reading Release.gpg refuses it).
func TestVerifyBadReleaseGpg(t *testing.T) {
	f := newFixture(t)
	f.publish("staging", f.deb("hello", "1.0-1"))
	other := newFixture(t)
	_, sig, err := other.key.Signer.Sign([]byte("something else\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.root, "dists/staging/Release.gpg"), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := f.repo.Verify(context.Background())
	if !errors.Is(err, repo.ErrVerify) || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "dists/staging/Release.gpg") {
		t.Errorf("Verify with a bad Release.gpg: %v %+v", err, rep)
	}
}

// TestVerifyEveryClaim: two dists list the same pool file, one with a
// wrong SHA256 (apt-get download from it fails with Hash Sum mismatch).
// Verify reports that dist, and only it, whichever sorts first.
func TestVerifyEveryClaim(t *testing.T) {
	for _, bad := range []string{"a-forged", "z-forged"} {
		t.Run(bad, func(t *testing.T) {
			f := newFixture(t)
			f.publish("staging", f.deb("hello", "1.0-1"))
			forgeDist(t, f, "staging", bad, func(entry []byte) []byte {
				i := bytes.Index(entry, []byte("SHA256: ")) + len("SHA256: ")
				out := append([]byte(nil), entry...)
				copy(out[i:], strings.Repeat("0", 64))
				return out
			})
			rep, err := f.repo.Verify(context.Background())
			if !errors.Is(err, repo.ErrVerify) || len(rep.Problems) != 1 || !strings.HasPrefix(rep.Problems[0], bad+" hello 1.0-1 amd64: ") {
				t.Errorf("Verify: %v, problems %q", err, rep.Problems)
			}
			if rep.Files != 2 || rep.Packages != 2 {
				t.Errorf("checked %d files, %d entries; want 2 and 2", rep.Files, rep.Packages)
			}
		})
	}
}

// forgeDist writes dist to, a copy of dist from with each index entry
// passed through edit, signed with the fixture's key: what a writer with
// the key but a bug (or a hand-edited index) would leave.
func forgeDist(t *testing.T, f *fixture, from, to string, edit func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	pkgs, err := f.repo.List(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	for _, p := range pkgs {
		plain.Write(edit(p.Raw))
		plain.WriteByte('\n')
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	rel := &repo.Release{Origin: "aptfleet", Label: "aptfleet", Suite: to, Codename: to, Date: time.Now().UTC().Truncate(time.Second),
		Architectures: []string{"amd64"}, Components: []string{"main"}, Files: []repo.ReleaseFile{
			{Path: "main/binary-amd64/Packages", Size: int64(plain.Len()), SHA256: sum(plain.Bytes())},
			{Path: "main/binary-amd64/Packages.gz", Size: int64(gz.Len()), SHA256: sum(gz.Bytes())},
		}}
	in, det, err := f.key.Signer.Sign(rel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(f.root, "dists", to)
	for p, b := range map[string][]byte{
		"InRelease": in, "Release": rel.Bytes(), "Release.gpg": det, "main/binary-amd64/Packages.gz": gz.Bytes(),
		"main/binary-amd64/by-hash/SHA256/" + sum(gz.Bytes()): gz.Bytes(),
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(d, p)), 0o755)
		if err := os.WriteFile(filepath.Join(d, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
