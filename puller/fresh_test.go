package puller_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/statedir"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/s3"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

// copyObjects copies every object under from to the same key under to (from
// itself to restore a saved copy), as S3 versioning or a writer with the CI
// role could.
func copyObjects(t *testing.T, s repo.Store, saved map[string][]byte, from, to string) {
	t.Helper()
	for k, b := range saved {
		k = to + strings.TrimPrefix(k, from)
		if _, err := s.Put(context.Background(), k, bytes.NewReader(b), int64(len(b)), repo.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func saveObjects(t *testing.T, s repo.Store, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	var keys []string
	if err := s.List(ctx, prefix, func(o repo.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		rc, _, err := s.Get(ctx, k, "")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		out[k] = b
	}
	return out
}

// replay runs the agent against a real signed repository in store and
// replays old or foreign signed indexes at it: none may move the host.
func replay(t *testing.T, store repo.Store) {
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
	clock := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	r := &repo.Repo{Store: store, Signer: signer, Config: repo.DefaultConfig(), Now: func() time.Time { return clock }}
	built := map[string]string{}
	publish := func(dist, version string) {
		t.Helper()
		if built[version] == "" {
			built[version] = debs.Write(t, work, debs.Spec{Name: "hello", Version: version})
		}
		if _, err := r.Publish(ctx, dist, "main", []string{built[version]}); err != nil {
			t.Fatal(err)
		}
	}
	publish("staging", "1.0-1")
	publish("staging", "3.0-1")
	publish("production", "1.0-1")
	old := saveObjects(t, store, "dists/production/")
	clock = clock.Add(time.Minute)
	publish("production", "2.0-1")

	tb := newTestbed(t)
	tb.cfg.Apps[0].Env, tb.cfg.Apps[0].Dist = "production", "production"
	tb.members.n.Store(1)
	tb.fleet.installed["i-1"] = "1.0-1"
	steps := tb.fleet.host("i-1")
	stateDir := t.TempDir()
	newAgent := func() *puller.Agent {
		dates, err := statedir.OpenDates(stateDir)
		if err != nil {
			t.Fatal(err)
		}
		a, err := puller.New(tb.cfg, "i-1", puller.Deps{
			Apps: []puller.AppDeps{{Index: puller.RepoIndex{Reader: &repo.Reader{Store: store, Keyring: signer.Keyring()}, App: "hello", Dates: dates},
				Installer: steps, Restarter: steps, Checker: steps}},
			Lock: tb.sem, State: tb.state, Members: tb.members, Compare: debian.CompareVersions, Publisher: tb.events,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := newAgent()
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tb.fleet.versionOf("i-1"); v != "2.0-1" {
		t.Fatalf("host on %q, want 2.0-1", v)
	}
	installs := len(tb.fleet.installs)
	stays := func(t *testing.T, a *puller.Agent, want error) {
		t.Helper()
		err := a.Once(ctx)
		var stale *puller.StaleIndexError
		if _, isStale := want.(*puller.StaleIndexError); isStale && !errors.As(err, &stale) || !isStale && !errors.Is(err, want) {
			t.Fatalf("cycle: %v, want %T %v", err, want, want)
		}
		if v := tb.fleet.versionOf("i-1"); v != "2.0-1" || len(tb.fleet.installs) != installs {
			t.Fatalf("host moved to %q (%d installs)", v, len(tb.fleet.installs)-installs)
		}
	}

	t.Run("older dists/production restored", func(t *testing.T) {
		current := saveObjects(t, store, "dists/production/")
		copyObjects(t, store, old, "dists/production/", "dists/production/")
		defer copyObjects(t, store, current, "dists/production/", "dists/production/")
		var stale *puller.StaleIndexError
		for range 3 { // every tick refuses it; one event
			err := a.Once(ctx)
			if !errors.As(err, &stale) || !stale.Date.Before(stale.Newest) {
				t.Fatalf("cycle: %v, want a puller.StaleIndexError", err)
			}
		}
		stays(t, newAgent(), new(puller.StaleIndexError)) // a restarted agent remembers
		if n := len(tb.events.of(event.StaleIndex)); n != 2 {
			t.Fatalf("%d stale_index events from two agent runs, want one each", n)
		}
		if v := tb.fleet.versionOf("i-1"); v != "2.0-1" {
			t.Fatalf("host moved to %q", v)
		}
	})
	t.Run("staging's signed files over production", func(t *testing.T) {
		current := saveObjects(t, store, "dists/production/")
		copyObjects(t, store, saveObjects(t, store, "dists/staging/"), "dists/staging/", "dists/production/")
		defer copyObjects(t, store, current, "dists/production/", "dists/production/")
		stays(t, a, repo.ErrWrongDist)
	})
	t.Run("expired", func(t *testing.T) {
		r.Config.ValidFor = time.Minute // signed an hour ago: long expired
		clock = clock.Add(time.Minute)
		if _, err := r.Resign(ctx, "production"); err != nil {
			t.Fatal(err)
		}
		stays(t, a, repo.ErrExpired)
	})
	t.Run("a corrupt state file is an error naming it", func(t *testing.T) {
		path := filepath.Join(stateDir, "index.json")
		if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
		r.Config.ValidFor = -1
		clock = time.Now()
		if _, err := r.Resign(ctx, "production"); err != nil {
			t.Fatal(err)
		}
		err := newAgent().Once(ctx)
		if !errors.Is(err, statedir.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Fatalf("cycle over a corrupt state file: %v", err)
		}
	})
}

// TestReplayedIndexIsRefused: restoring an older dists/production (older
// Date), staging's signed files copied over production, and an expired
// Valid-Until never move the host; on the directory store and versitygw.
func TestReplayedIndexIsRefused(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		ds, err := dir.Open(filepath.Join(t.TempDir(), "repo"))
		if err != nil {
			t.Fatal(err)
		}
		replay(t, ds)
	})
	t.Run("versitygw", func(t *testing.T) {
		srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
		st, err := s3.New(t.Context(), s3.Config{
			Bucket: srv.Bucket, Prefix: "apt", Region: srv.Region, Endpoint: srv.URL, PathStyle: srv.PathStyle,
			Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
			HTTPClient:  srv.HTTPClient,
		})
		if err != nil {
			t.Fatal(err)
		}
		replay(t, st)
	})
}
