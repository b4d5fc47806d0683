package repo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// objects reads every object under prefix, to restore or copy it later, as
// S3 versioning or a bucket writer could.
func objects(t *testing.T, s repo.Store, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	var keys []string
	if err := s.List(ctx, prefix, func(o repo.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range keys {
		rc, _, err := s.Get(ctx, k, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// putObjects writes objs, renaming the prefix from to to.
func putObjects(t *testing.T, s repo.Store, objs map[string][]byte, from, to string) {
	t.Helper()
	for k, b := range objs {
		k = to + strings.TrimPrefix(k, from)
		if _, err := s.Put(context.Background(), k, bytes.NewReader(b), int64(len(b)), repo.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func release(t *testing.T, r *repo.Repo, dist string) *repo.Release {
	t.Helper()
	d, err := (&repo.Reader{Store: r.Store, Keyring: r.Signer.Keyring(), Now: r.Now}).Dist(context.Background(), dist)
	if err != nil {
		t.Fatalf("read %s: %v", dist, err)
	}
	return d.Release
}

// freshness runs the index-freshness checks on r (a directory or a bucket).
func freshness(t *testing.T, r *repo.Repo, debDir string) {
	ctx := context.Background()
	deb := func(v string) string { return debs.Write(t, debDir, debs.Spec{Name: "hello", Version: v}) }
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return clock }

	// --valid-for on a publish writes Valid-Until; later changes keep the period.
	r.Config.ValidFor = 48 * time.Hour
	if _, err := r.Publish(ctx, "staging", "", []string{deb("1.0-1")}); err != nil {
		t.Fatal(err)
	}
	rel := release(t, r, "staging")
	if !rel.Date.Equal(clock) || !rel.ValidUntil.Equal(clock.Add(48*time.Hour)) {
		t.Fatalf("Date %s Valid-Until %s; want %s and 48h later", rel.Date, rel.ValidUntil, clock)
	}
	r.Config.ValidFor = 0
	clock = clock.Add(time.Hour)
	if _, err := r.Publish(ctx, "staging", "", []string{deb("2.0-1")}); err != nil {
		t.Fatal(err)
	}
	if rel := release(t, r, "staging"); !rel.ValidUntil.Equal(clock.Add(48 * time.Hour)) {
		t.Fatalf("a publish without ValidFor: Valid-Until %s, want the dist's period kept (%s)", rel.ValidUntil, clock.Add(48*time.Hour))
	}
	if _, err := r.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: "1.0-1"}}); err != nil {
		t.Fatal(err)
	}
	if rel := release(t, r, "production"); !rel.ValidUntil.IsZero() {
		t.Fatalf("a new dist got Valid-Until %s without ValidFor", rel.ValidUntil)
	}

	t.Run("Date never moves backward", func(t *testing.T) {
		before := release(t, r, "staging").Date
		clock = clock.Add(-24 * time.Hour) // this writer's clock is a day behind
		defer func() { clock = clock.Add(24 * time.Hour) }()
		if _, err := r.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "2.0-1"}}); err != nil {
			t.Fatal(err)
		}
		if got := release(t, r, "staging").Date; !got.Equal(before) {
			t.Fatalf("Date %s after a change by a slow clock; want %s kept", got, before)
		}
	})

	t.Run("resign changes only Date and Valid-Until", func(t *testing.T) {
		old := release(t, r, "staging")
		indexes := objects(t, r.Store, "dists/staging/main/")
		clock = clock.Add(24 * time.Hour)
		rel, err := r.Resign(ctx, "staging")
		if err != nil {
			t.Fatal(err)
		}
		if !rel.Date.Equal(clock) || !rel.ValidUntil.Equal(clock.Add(48*time.Hour)) {
			t.Fatalf("resigned Date %s Valid-Until %s; want %s and 48h later", rel.Date, rel.ValidUntil, clock)
		}
		a, b := *old, *rel
		a.Date, a.ValidUntil, b.Date, b.ValidUntil = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("resign changed more than the dates:\n%s\n---\n%s", a.Bytes(), b.Bytes())
		}
		after := objects(t, r.Store, "dists/staging/main/")
		if len(after) != len(indexes) {
			t.Fatalf("resign wrote indexes: %d objects before, %d after", len(indexes), len(after))
		}
		for k, v := range indexes {
			if !bytes.Equal(after[k], v) {
				t.Fatalf("resign changed %s", k)
			}
		}
		eq(t, "packages after resign", listOf(t, r, "staging"), []string{"hello 1.0-1 amd64"})
		// A new period, and --valid-for 0 (negative here) drops Valid-Until.
		r.Config.ValidFor = 7 * 24 * time.Hour
		if rel, err := r.Resign(ctx, "staging"); err != nil || !rel.ValidUntil.Equal(rel.Date.Add(7*24*time.Hour)) {
			t.Fatalf("resign with a new period: %+v, %v", rel, err)
		}
		r.Config.ValidFor = -1
		if rel, err := r.Resign(ctx, "staging"); err != nil || !rel.ValidUntil.IsZero() {
			t.Fatalf("resign dropping Valid-Until: %+v, %v", rel, err)
		}
		r.Config.ValidFor = 48 * time.Hour
		if _, err := r.Resign(ctx, "staging"); err != nil {
			t.Fatal(err)
		}
		r.Config.ValidFor = 0
		if _, err := r.Resign(ctx, "qa"); !errors.Is(err, repo.ErrNoDist) {
			t.Fatalf("resign of a missing dist: %v, want ErrNoDist", err)
		}
	})

	t.Run("expired refused", func(t *testing.T) {
		rel := release(t, r, "staging")
		rd := &repo.Reader{Store: r.Store, Keyring: r.Signer.Keyring(), Now: func() time.Time { return rel.ValidUntil.Add(time.Second) }}
		if _, err := rd.Index(ctx, "staging"); !errors.Is(err, repo.ErrExpired) || !strings.Contains(err.Error(), "dists/staging/InRelease") {
			t.Fatalf("Index of an expired dist: %v, want ErrExpired naming dists/staging/InRelease", err)
		}
		rd.Now = func() time.Time { return rel.ValidUntil }
		if _, err := rd.Index(ctx, "staging"); err != nil {
			t.Fatalf("Index at Valid-Until itself: %v", err)
		}
	})

	t.Run("staging's signed files over production refused", func(t *testing.T) {
		saved := objects(t, r.Store, "dists/production/")
		defer putObjects(t, r.Store, saved, "dists/production/", "dists/production/")
		putObjects(t, r.Store, objects(t, r.Store, "dists/staging/"), "dists/staging/", "dists/production/")
		rd := &repo.Reader{Store: r.Store, Keyring: r.Signer.Keyring()}
		_, err := rd.Index(ctx, "production")
		if !errors.Is(err, repo.ErrWrongDist) || !strings.Contains(err.Error(), `not "production"`) {
			t.Fatalf("Index of production holding staging's files: %v, want ErrWrongDist", err)
		}
	})
}

func TestIndexFreshness(t *testing.T) {
	f := newFixture(t)
	freshness(t, f.repo, f.debs)
}

func TestIndexFreshnessOnVersitygw(t *testing.T) {
	srv := s3server.Versitygw(t, s3server.VersitygwOptions{})
	key := repotest.NewKey(t, t.TempDir(), "")
	freshness(t, s3Repo(t, srv, "apt", key), t.TempDir())
}

// TestAptHonoursValidUntil: real apt accepts a fresh Valid-Until, refuses an
// expired one, and accepts the dist again once it is resigned.
func TestAptHonoursValidUntil(t *testing.T) {
	testenv.NeedTools(t, "apt-get")
	ctx := context.Background()
	f := newFixture(t)
	url := f.serve()
	past := time.Now().Add(-3 * time.Hour)
	f.repo.Now = func() time.Time { return past }
	f.repo.Config.ValidFor = time.Hour // expired two hours ago
	f.publish("production", f.deb("hello", "1.0-1"))
	apt := testenv.NewApt(t, url, "production", f.key.Keyring)
	out, err := apt.Update(ctx)
	if err == nil || !strings.Contains(out, "expired") {
		t.Fatalf("apt-get update of an expired dist: err %v\n%s", err, out)
	}
	f.repo.Now = time.Now
	f.repo.Config.ValidFor = 0 // the dist's period, an hour
	// http.FileServer's Last-Modified has a resolution of one second: a
	// resign within the second apt last fetched would be answered 304.
	time.Sleep(1100 * time.Millisecond)
	if _, err := f.repo.Resign(ctx, "production"); err != nil {
		t.Fatal(err)
	}
	if out, err := apt.Update(ctx); err != nil || strings.Contains(out, "expired") {
		t.Fatalf("apt-get update after resign: err %v\n%s", err, out)
	}
	if out, err := apt.Run(ctx, "download", "hello"); err != nil {
		t.Fatalf("apt-get download after resign: %v\n%s", err, out)
	}
}
