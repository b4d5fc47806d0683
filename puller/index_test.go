package puller_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
)

// countingStore counts the reads the agent makes of a real repository store.
type countingStore struct {
	repo.Store
	mu   sync.Mutex
	gets []string
}

func (c *countingStore) Get(ctx context.Context, key, ifNoneMatch string) (io.ReadCloser, repo.Object, error) {
	c.mu.Lock()
	c.gets = append(c.gets, key)
	c.mu.Unlock()
	return c.Store.Get(ctx, key, ifNoneMatch)
}

func (c *countingStore) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gets
	c.gets = nil
	return g
}

// TestRealRepository runs the agent on a real signed repository (local
// directory store, repo.Reader): an idle tick is one conditional GET of
// InRelease; a publish is noticed, verified and deployed with Debian version
// ordering (1.10 after 1.9).
func TestRealRepository(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	var key bytes.Buffer
	if err := repo.GenerateKey(&key, "puller test", "tests@aptfleet.invalid", nil); err != nil {
		t.Fatal(err)
	}
	signer, err := repo.ParseSigner(key.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dir.Open(filepath.Join(work, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: ds}
	cfg := repo.DefaultConfig()
	cfg.ValidFor = 7 * 24 * time.Hour
	r := &repo.Repo{Store: ds, Signer: signer, Config: cfg}
	publish := func(version string) {
		t.Helper()
		if _, err := r.Publish(ctx, "staging", "main", []string{debs.Write(t, work, debs.Spec{Name: "hello", Version: version})}); err != nil {
			t.Fatal(err)
		}
	}
	publish("1.9-1")

	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.fleet.installed["i-1"] = "1.9-1"
	steps := tb.fleet.host("i-1")
	a, err := puller.New(tb.cfg, "i-1", puller.Deps{
		Apps: []puller.AppDeps{{Index: puller.RepoIndex{Reader: &repo.Reader{Store: store, Keyring: signer.Keyring()}},
			Installer: steps, Restarter: steps, Checker: steps}},
		Lock: tb.sem, State: tb.state, Members: tb.members, Compare: debian.CompareVersions,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got := store.take(); len(got) < 2 {
		t.Fatalf("first cycle read %v; want InRelease and the index", got)
	}

	t.Run("idle tick is one conditional request", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if err := a.Once(ctx); err != nil {
				t.Fatal(err)
			}
			got := store.take()
			if len(got) != 1 || got[0] != "dists/staging/InRelease" {
				t.Fatalf("idle tick read %v, want exactly [dists/staging/InRelease]", got)
			}
		}
		if n := len(tb.fleet.installs); n != 0 {
			t.Errorf("%d installs on idle ticks", n)
		}
	})
	t.Run("the listing carries Valid-Until", func(t *testing.T) {
		reader := &repo.Reader{Store: ds, Keyring: signer.Keyring()}
		d, err := reader.Dist(ctx, "staging")
		if err != nil {
			t.Fatal(err)
		}
		l, err := puller.RepoIndex{Reader: reader}.Versions(ctx, "staging", "hello")
		if err != nil {
			t.Fatal(err)
		}
		if d.Release.ValidUntil.IsZero() || !l.ValidUntil.Equal(d.Release.ValidUntil) {
			t.Fatalf("listing's Valid-Until %s, want the Release's %s", l.ValidUntil, d.Release.ValidUntil)
		}
	})
	t.Run("a publish is deployed in dpkg order", func(t *testing.T) {
		publish("1.10-1")
		if err := a.Once(ctx); err != nil {
			t.Fatal(err)
		}
		if v := tb.fleet.versionOf("i-1"); v != "1.10-1" {
			t.Fatalf("host on %q, want 1.10-1 (newer than 1.9-1 for dpkg)", v)
		}
	})
}
