package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// TestKeyPinning: a repository trusts the key its first publish signed
// with. Every change with another key is refused before any write (no
// pool file left behind, no dist the real key cannot verify); --new-key
// alone lets another key sign a new dist. On the directory store and on
// versitygw.
func TestKeyPinning(t *testing.T) {
	owner := repotest.NewKey(t, t.TempDir(), "")
	other := repotest.NewKey(t, t.TempDir(), "")
	debs := t.TempDir()
	hello := repotest.WriteDeb(t, debs, repotest.Spec{Name: "hello", Version: "1.0-1"})
	rogue := repotest.WriteDeb(t, debs, repotest.Spec{Name: "rogue", Version: "6.6.6-1"})
	stores := map[string]func(t *testing.T) repo.Store{
		"dir": func(t *testing.T) repo.Store {
			s, err := dir.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"versitygw": func(t *testing.T) repo.Store {
			return s3Repo(t, s3server.Versitygw(t, s3server.VersitygwOptions{}), "apt", owner).Store
		},
	}
	for _, name := range []string{"dir", "versitygw"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := stores[name](t)
			mine := &repo.Repo{Store: st, Signer: owner.Signer}
			theirs := &repo.Repo{Store: st, Signer: other.Signer}
			if _, err := mine.Publish(ctx, "staging", "", []string{hello}); err != nil {
				t.Fatal(err)
			}
			trusted, _, err := mine.TrustedKeys(ctx)
			if err != nil || strings.Join(trusted.Fingerprints(), ",") != owner.Signer.Fingerprint() {
				t.Fatalf("trusted keys after the first publish: %v %v", trusted.Fingerprints(), err)
			}
			before := storeKeys(t, st)
			refused := map[string]func() error{
				"publish to the dist": func() error {
					_, err := theirs.Publish(ctx, "staging", "", []string{rogue})
					return err
				},
				"publish to a new dist": func() error {
					_, err := theirs.Publish(ctx, "rogue", "", []string{rogue})
					return err
				},
				"promote": func() error {
					_, err := theirs.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: "1.0-1"}})
					return err
				},
				"yank": func() error {
					_, err := theirs.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "1.0-1"}})
					return err
				},
				"prune": func() error {
					_, err := theirs.Prune(ctx, repo.PruneOptions{Keep: 1})
					return err
				},
				"rollback": func() error {
					_, err := theirs.Rollback(ctx, "staging", "hello", "")
					return err
				},
				"resign": func() error {
					_, err := theirs.Resign(ctx, "staging")
					return err
				},
				"repair": func() error {
					_, err := theirs.Repair(ctx)
					return err
				},
				"--new-key on an existing dist": func() error {
					r := *theirs
					r.NewKey = true
					_, err := r.Publish(ctx, "staging", "", []string{rogue})
					return err
				},
			}
			for what, fn := range refused {
				err := fn()
				if !errors.Is(err, repo.ErrUntrustedKey) && !errors.Is(err, repo.ErrBadSignature) {
					t.Errorf("%s with another key: %v, want ErrUntrustedKey", what, err)
				}
				if after := storeKeys(t, st); strings.Join(after, " ") != strings.Join(before, " ") {
					t.Errorf("%s with another key wrote: before %v, after %v", what, before, after)
				}
			}
			// The owner's changes go on; verify and prune see one key.
			if _, err := mine.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: "1.0-1"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := mine.Prune(ctx, repo.PruneOptions{Keep: 1}); err != nil {
				t.Fatal(err)
			}

			// --new-key: another key may sign a new dist, and is trusted from then on.
			r := *theirs
			r.NewKey = true
			if _, err := r.Publish(ctx, "partner", "", []string{rogue}); err != nil {
				t.Fatalf("publish --new-key: %v", err)
			}
			trusted, _, _ = mine.TrustedKeys(ctx)
			if got := strings.Join(trusted.Fingerprints(), ","); got != owner.Signer.Fingerprint()+","+other.Signer.Fingerprint() {
				t.Errorf("trusted keys after --new-key: %s", got)
			}
			if got := listOf(t, &repo.Repo{Store: st, Keyring: other.Signer.Keyring()}, "partner"); strings.Join(got, "|") != "rogue 6.6.6-1 amd64" {
				t.Errorf("partner = %v", got)
			}
		})
	}
}

// TestKeyPinningRecordsOlderRepositories: a repository written before the
// trusted keys were recorded gets its key recorded by the next change
// signed with the key its dists verify with; another key is refused.
func TestKeyPinningRecordsOlderRepositories(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish("staging", f.deb("hello", "1.0-1"))
	if err := f.repo.Store.Delete(ctx, repo.TrustedKeysKey); err != nil {
		t.Fatal(err)
	}
	other := repotest.NewKey(t, t.TempDir(), "")
	snap := treeHash(t, f.root)
	if _, err := (&repo.Repo{Store: f.repo.Store, Signer: other.Signer}).Publish(ctx, "rogue", "", []string{f.deb("rogue", "1")}); !errors.Is(err, repo.ErrUntrustedKey) {
		t.Errorf("publish of a new dist with another key: %v", err)
	}
	if treeHash(t, f.root) != snap {
		t.Error("the refused publish wrote")
	}
	f.publish("staging", f.deb("hello", "1.1-1"))
	if k, _, _ := f.repo.TrustedKeys(ctx); strings.Join(k.Fingerprints(), ",") != f.key.Signer.Fingerprint() {
		t.Errorf("trusted keys: %v", k.Fingerprints())
	}
}

// TestOriginLabel: Config.Origin and Label go into the Release a change
// writes, later changes without them keep the dist's, and a value that
// does not fit on one line is refused before any write.
func TestOriginLabel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.repo.Config.Origin, f.repo.Config.Label = "Acme", "Acme apps"
	f.publish("staging", f.deb("hello", "1.0-1"))
	f.repo.Config.Origin, f.repo.Config.Label = "", ""
	f.publish("staging", f.deb("hello", "1.1-1"))
	d, err := (&repo.Reader{Store: f.repo.Store, Keyring: f.key.Signer.Keyring()}).Dist(ctx, "staging")
	if err != nil || d.Release.Origin != "Acme" || d.Release.Label != "Acme apps" {
		t.Fatalf("Release after two publishes: %+v %v", d, err)
	}
	snap := treeHash(t, f.root)
	f.repo.Config.Origin = "Acme\nSuite: production"
	if _, err := f.repo.Publish(ctx, "staging", "", []string{f.deb("hello", "1.2-1")}); err == nil || !strings.Contains(err.Error(), "must fit on one line") {
		t.Errorf("Origin with a newline: %v", err)
	}
	if treeHash(t, f.root) != snap {
		t.Error("the refused publish wrote")
	}
}
