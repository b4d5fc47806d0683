package repo_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// fixture is a fresh repository in a temporary directory.
type fixture struct {
	t    *testing.T
	root string
	debs string
	key  repotest.Key
	repo *repo.Repo
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	s, err := dir.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	key := repotest.NewKey(t, t.TempDir(), "")
	return &fixture{t: t, root: root, debs: t.TempDir(), key: key,
		repo: &repo.Repo{Store: s, Signer: key.Signer}}
}

func (f *fixture) deb(name, version string) string {
	return repotest.WriteDeb(f.t, f.debs, repotest.Spec{Name: name, Version: version})
}

func (f *fixture) publish(dist string, paths ...string) []repo.Package {
	f.t.Helper()
	added, err := f.repo.Publish(context.Background(), dist, "", paths)
	if err != nil {
		f.t.Fatalf("Publish(%s): %v", dist, err)
	}
	return added
}

func (f *fixture) list(dist string) []string {
	f.t.Helper()
	pkgs, err := f.repo.List(context.Background(), dist)
	if err != nil {
		f.t.Fatalf("List(%s): %v", dist, err)
	}
	var out []string
	for _, p := range pkgs {
		out = append(out, p.String())
	}
	return out
}

func (f *fixture) verify() *repo.VerifyReport {
	f.t.Helper()
	rep, err := f.repo.Verify(context.Background())
	if err != nil {
		f.t.Fatalf("Verify: %v", err)
	}
	return rep
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestPublishPromoteYankPrune(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish("staging", f.deb("hello", "1.0-1"), f.deb("hello", "1.10-1"), f.deb("libfoo1", "2:0.9~rc1-1"))
	f.publish("staging", f.deb("hello", "1.9-1"))
	eq(t, "staging", f.list("staging"), []string{"hello 1.10-1 amd64", "hello 1.9-1 amd64", "hello 1.0-1 amd64", "libfoo1 2:0.9~rc1-1 amd64"})

	// Publishing the same file again is a no-op; other bytes under the same name are refused.
	if added := f.publish("staging", filepath.Join(f.debs, "hello_1.0-1_amd64.deb")); len(added) != 0 {
		t.Errorf("republish added %v", added)
	}
	other := repotest.WriteDeb(t, t.TempDir(), repotest.Spec{Name: "hello", Version: "1.0-1", Payload: "different"})
	if _, err := f.repo.Publish(ctx, "staging", "", []string{other}); !errors.Is(err, repo.ErrConflict) {
		t.Errorf("publish of other bytes: got %v, want ErrConflict", err)
	}

	promoted, err := f.repo.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: "1.9-1"}})
	if err != nil || len(promoted) != 1 {
		t.Fatalf("Promote: %v %v", promoted, err)
	}
	eq(t, "production", f.list("production"), []string{"hello 1.9-1 amd64"})
	st, _ := f.repo.List(ctx, "staging")
	if promoted[0].Filename != "pool/main/h/hello/hello_1.9-1_amd64.deb" || promoted[0].SHA256 != st[1].SHA256 {
		t.Errorf("promoted entry %+v does not share the staging pool file %+v", promoted[0], st[1])
	}
	if _, err := f.repo.Promote(ctx, "nosuch", "production", []repo.Ref{{Name: "hello", Version: "1.9-1"}}); !errors.Is(err, repo.ErrNoDist) {
		t.Errorf("promote from a missing dist: %v", err)
	}
	if _, err := f.repo.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: "7"}}); err == nil {
		t.Errorf("promote of a missing version succeeded")
	}

	if _, err := f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "1.10-1"}}); err != nil {
		t.Fatal(err)
	}
	eq(t, "staging after yank", f.list("staging"), []string{"hello 1.9-1 amd64", "hello 1.0-1 amd64", "libfoo1 2:0.9~rc1-1 amd64"})
	if _, err := f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "1.10-1"}}); err == nil {
		t.Errorf("second yank succeeded")
	}
	f.verify()

	// Retention keeps the newest --keep versions and the rollback target
	// (the one before the newest): with 2.0-1 published, 1.0-1 goes.
	f.publish("staging", f.deb("hello", "2.0-1"))
	// Later than any change's hold on what it referenced (3 x Window).
	clk := &clock{}
	f.repo.Now = clk.Now
	clk.advance(time.Hour)

	// A dry run reports and changes nothing.
	snap := treeHash(t, f.root)
	dry, err := f.repo.Prune(ctx, repo.PruneOptions{Keep: 1, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "dry-run removed", dry.Removed, []string{"staging: hello 1.0-1 amd64"})
	if !contains(dry.Deleted, "pool/main/h/hello/hello_1.10-1_amd64.deb") || treeHash(t, f.root) != snap {
		t.Errorf("dry run: deleted %q, tree changed %v", dry.Deleted, treeHash(t, f.root) != snap)
	}

	// Prune: keep 1 per package; hello 1.0-1 leaves staging, its pool file
	// is kept this run (just dereferenced), and 1.10-1 (yanked before) goes.
	rep, err := f.repo.Prune(ctx, repo.PruneOptions{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "removed", rep.Removed, []string{"staging: hello 1.0-1 amd64"})
	if !contains(rep.Deleted, "pool/main/h/hello/hello_1.10-1_amd64.deb") || contains(rep.Deleted, "pool/main/h/hello/hello_1.0-1_amd64.deb") {
		t.Errorf("first prune deleted %q", rep.Deleted)
	}
	rep, err = f.repo.Prune(ctx, repo.PruneOptions{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !contains(rep.Deleted, "pool/main/h/hello/hello_1.0-1_amd64.deb") {
		t.Errorf("second prune deleted %q", rep.Deleted)
	}
	eq(t, "staging after prune", f.list("staging"), []string{"hello 2.0-1 amd64", "hello 1.9-1 amd64", "libfoo1 2:0.9~rc1-1 amd64"})
	vr := f.verify()
	if len(vr.Warnings) != 0 || vr.Packages != 4 {
		t.Errorf("verify after prune: %+v", vr)
	}
	// Grace: a fresh unreferenced file survives a prune with a grace period.
	f.publish("staging", f.deb("hello", "3.0-1"))
	f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "3.0-1"}})
	rep, _ = f.repo.Prune(ctx, repo.PruneOptions{Keep: 5, Grace: time.Hour})
	rep, _ = f.repo.Prune(ctx, repo.PruneOptions{Keep: 5, Grace: time.Hour})
	if contains(rep.Deleted, "pool/main/h/hello/hello_3.0-1_amd64.deb") {
		t.Errorf("prune deleted a file inside the grace period")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestVerifyFindsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(root string) error
		want   string
	}{
		{"pool file missing", func(root string) error {
			return os.Remove(filepath.Join(root, "pool/main/h/hello/hello_1.0-1_amd64.deb"))
		}, "pool file pool/main/h/hello/hello_1.0-1_amd64.deb"},
		{"pool file altered", func(root string) error {
			return os.WriteFile(filepath.Join(root, "pool/main/h/hello/hello_1.0-1_amd64.deb"), []byte("x"), 0o644)
		}, "has 1 bytes"},
		{"index altered", func(root string) error {
			m, _ := filepath.Glob(filepath.Join(root, "dists/staging/main/binary-amd64/by-hash/SHA256/*"))
			for _, p := range m {
				if err := os.WriteFile(p, []byte("Package: evil\n"), 0o644); err != nil {
					return err
				}
			}
			return nil
		}, "does not match its checksum"},
		{"InRelease altered", func(root string) error {
			p := filepath.Join(root, "dists/staging/InRelease")
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, []byte(strings.Replace(string(b), "Suite: staging", "Suite: stagine", 1)), 0o644)
		}, "bad signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.publish("staging", f.deb("hello", "1.0-1"))
			f.verify()
			if err := tt.damage(f.root); err != nil {
				t.Fatal(err)
			}
			_, err := f.repo.Verify(context.Background())
			if !errors.Is(err, repo.ErrVerify) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v, want ErrVerify mentioning %q", err, tt.want)
			}
		})
	}
}

func TestArchitectures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	all := repotest.WriteDeb(t, f.debs, repotest.Spec{Name: "hello-data", Version: "1.0-1", Arch: "all"})
	arm := repotest.WriteDeb(t, f.debs, repotest.Spec{Name: "hello", Version: "1.0-1", Arch: "arm64"})
	f.publish("staging", f.deb("hello", "1.0-1"), all, arm)
	eq(t, "list", f.list("staging"), []string{"hello 1.0-1 amd64", "hello 1.0-1 arm64", "hello-data 1.0-1 all"})
	for arch, want := range map[string][]string{
		"amd64": {"hello 1.0-1 amd64", "hello-data 1.0-1 all"},
		"arm64": {"hello 1.0-1 arm64", "hello-data 1.0-1 all"},
	} {
		r := &repo.Reader{Store: f.repo.Store, Keyring: f.key.Signer.Keyring(), Architecture: arch}
		pkgs, err := r.Index(ctx, "staging")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range pkgs {
			got = append(got, p.String())
		}
		eq(t, "Reader "+arch, got, want)
	}
	d, err := (&repo.Reader{Store: f.repo.Store, Keyring: f.key.Signer.Keyring()}).Dist(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "Architectures", d.Release.Architectures, []string{"amd64", "arm64"})
	if _, err := f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "1.0-1"}}); err != nil {
		t.Fatal(err)
	}
	eq(t, "after yank", f.list("staging"), []string{"hello-data 1.0-1 all"})
	f.verify()
}

func TestReaderCheck(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := &repo.Reader{Store: f.repo.Store, Keyring: f.key.Signer.Keyring()}
	if _, _, err := r.Check(ctx, "staging", ""); !errors.Is(err, repo.ErrNoDist) {
		t.Fatalf("Check of a missing dist: %v", err)
	}
	f.publish("staging", f.deb("hello", "1.0-1"))
	changed, etag, err := r.Check(ctx, "staging", "")
	if err != nil || !changed || etag == "" {
		t.Fatalf("first Check = %v %q %v", changed, etag, err)
	}
	if changed, same, err := r.Check(ctx, "staging", etag); err != nil || changed || same != etag {
		t.Fatalf("Check with the current ETag = %v %q %v", changed, same, err)
	}
	f.publish("staging", f.deb("hello", "1.1-1"))
	changed, etag2, err := r.Check(ctx, "staging", etag)
	if err != nil || !changed || etag2 == etag {
		t.Fatalf("Check after a publish = %v %q %v", changed, etag2, err)
	}
	pkgs, err := r.Index(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := repo.Latest(pkgs, "hello", nil); !ok || p.Version != "1.1-1" {
		t.Errorf("Latest = %v", p)
	}
	if p, _ := repo.Latest(pkgs, "hello", func(v string) bool { return v == "1.1-1" }); p.Version != "1.0-1" {
		t.Errorf("Latest skipping 1.1-1 = %v", p)
	}
	wrong := repotest.NewKey(t, t.TempDir(), "")
	if _, err := (&repo.Reader{Store: f.repo.Store, Keyring: wrong.Signer.Keyring()}).Index(ctx, "staging"); !errors.Is(err, repo.ErrBadSignature) {
		t.Errorf("Index with the wrong key: %v", err)
	}
}

// treeHash hashes every file under root.
func treeHash(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		fmt.Fprintf(h, "%s %x %v\n", p, sha256.Sum256(b), err)
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}
