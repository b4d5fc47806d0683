package repo_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/repo"
)

// currentIndex returns the file of dist's current by-hash Packages.gz.
func (f *fixture) currentIndex(dist string) string {
	f.t.Helper()
	m, _ := filepath.Glob(filepath.Join(f.root, "dists", dist, "main", "binary-amd64", "by-hash", "SHA256", "*"))
	pkgs, err := f.repo.List(context.Background(), dist)
	if err != nil || len(m) == 0 {
		f.t.Fatalf("no index for %s: %v", dist, err)
	}
	data, _ := os.ReadFile(filepath.Join(f.root, "dists", dist, "main", "binary-amd64", "Packages.gz"))
	for _, p := range m {
		if b, _ := os.ReadFile(p); string(b) == string(data) {
			return p
		}
	}
	f.t.Fatalf("no by-hash object matches %s's plain-path index (%d packages)", dist, len(pkgs))
	return ""
}

// TestDeletedByHashIndex deletes a dist's current by-hash index: the
// reader the puller uses, and every command, must go on (from the
// plain-path copy whose checksum matches), and the next change must store
// the index again.
func TestDeletedByHashIndex(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(f *fixture) error
	}{
		{"reader", func(f *fixture) error {
			_, err := (&repo.Reader{Store: f.repo.Store, Keyring: f.key.Signer.Keyring()}).Index(ctx, "staging")
			return err
		}},
		{"publish", func(f *fixture) error {
			_, err := f.repo.Publish(ctx, "staging", "", []string{f.deb("hello", "3.0-1")})
			return err
		}},
		{"promote", func(f *fixture) error {
			_, err := f.repo.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: "1.0-1"}})
			return err
		}},
		{"yank", func(f *fixture) error {
			_, err := f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "2.0-1"}})
			return err
		}},
		{"prune", func(f *fixture) error {
			_, err := f.repo.Prune(ctx, repo.PruneOptions{Keep: 1})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.publish("staging", f.deb("hello", "1.0-1"), f.deb("hello", "2.0-1"))
			f.publish("production", f.deb("other", "1.0-1"))
			if err := os.Remove(f.currentIndex("staging")); err != nil {
				t.Fatal(err)
			}
			if err := tc.run(f); err != nil {
				t.Fatalf("%s with the current by-hash index deleted: %v", tc.name, err)
			}
			if _, err := f.repo.Prune(ctx, repo.PruneOptions{}); err != nil {
				t.Errorf("prune afterwards: %v", err)
			}
		})
	}
}

// TestRepair restores a deleted by-hash index and a damaged InRelease, and
// names what it cannot restore; verify points at it.
func TestRepair(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.publish("staging", f.deb("hello", "1.0-1"))
	f.publish("production", f.deb("other", "1.0-1"))
	if err := os.Remove(f.currentIndex("staging")); err != nil {
		t.Fatal(err)
	}
	rep, err := f.repo.Verify(ctx)
	if err == nil || !rep.Repairable || !strings.Contains(rep.Problems[0], "pkgbuild repair") {
		t.Fatalf("verify with a deleted index: %v, %+v", err, rep)
	}
	// A damaged InRelease (its signature no longer checks).
	inr := filepath.Join(f.root, "dists", "production", "InRelease")
	b, _ := os.ReadFile(inr)
	os.WriteFile(inr, []byte(strings.Replace(string(b), "production", "producti0n", 1)), 0o644)

	fixed, err := f.repo.Repair(ctx)
	if err != nil {
		t.Fatalf("repair: %v (%+v)", err, fixed)
	}
	if len(fixed.Restored) != 2 {
		t.Errorf("restored %q, want the index and InRelease", fixed.Restored)
	}
	if vr := f.verify(); len(vr.Warnings) != 0 {
		t.Errorf("after repair: warnings %q", vr.Warnings)
	}

	// What cannot be restored is named: a pool file, an index with no copy.
	os.Remove(filepath.Join(f.root, "pool", "main", "o", "other", "other_1.0-1_amd64.deb"))
	idx := f.currentIndex("staging")
	os.Remove(idx)
	os.Remove(filepath.Join(f.root, "dists", "staging", "main", "binary-amd64", "Packages.gz"))
	fixed, err = f.repo.Repair(ctx)
	if !errors.Is(err, repo.ErrUnrestorable) || len(fixed.Unrestorable) != 2 {
		t.Fatalf("repair of the unrestorable: %v, %q", err, fixed.Unrestorable)
	}
	for _, want := range []string{"publish that .deb again, or yank other=1.0-1", "no copy with its checksum"} {
		if !strings.Contains(strings.Join(fixed.Unrestorable, "\n"), want) {
			t.Errorf("unrestorable %q does not say %q", fixed.Unrestorable, want)
		}
	}
}
