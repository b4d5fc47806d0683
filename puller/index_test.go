package puller_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

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

// writeDeb builds a minimal .deb of name=version into dir.
func writeDeb(t *testing.T, dir, name, version string) string {
	t.Helper()
	payload := filepath.Join(dir, name+"-"+version+".txt")
	if err := os.WriteFile(payload, []byte(name+" "+version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: name, Arch: "amd64", Version: version, VersionSchema: "none",
		Maintainer: "aptfleet tests <tests@aptfleet.invalid>", Description: "test package",
		Overridables: nfpm.Overridables{Contents: files.Contents{{
			Source: payload, Destination: "/usr/share/" + name + "/payload",
			FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: time.Unix(1700000000, 0)},
		}}},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := deb.Default.Package(info, &b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+"_"+version+"_amd64.deb")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
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
	r := &repo.Repo{Store: ds, Signer: signer, Config: repo.DefaultConfig()}
	publish := func(version string) {
		t.Helper()
		if _, err := r.Publish(ctx, "staging", "main", []string{writeDeb(t, work, "hello", version)}); err != nil {
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
		Lock: tb.sem, State: tb.state, Members: tb.members, Compare: repo.CompareVersions,
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
