package statedir_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/statedir"
)

type seen struct {
	Date  time.Time         `json:"date"`
	Marks map[string]string `json:"marks,omitempty"`
}

func open(t *testing.T, dir string) statedir.File[seen] {
	t.Helper()
	f, err := statedir.Open[seen](dir, "index.json")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMissingIsFirstBoot(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "not", "yet"))
	v, ok, err := f.Load()
	if err != nil || ok || !v.Date.IsZero() {
		t.Fatalf("Load of a missing file = %+v, %v, %v; want zero, false, nil", v, ok, err)
	}
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	f := open(t, dir)
	want := seen{Date: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC), Marks: map[string]string{"1.0-1": "health"}}
	if err := f.Store(want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := f.Load()
	if err != nil || !ok || !got.Date.Equal(want.Date) || got.Marks["1.0-1"] != "health" {
		t.Fatalf("Load = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "index.json" {
		t.Fatalf("state directory holds %v; want only index.json (no temporary file left)", entries)
	}
	if fi, _ := os.Stat(f.Path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", fi.Mode().Perm())
	}
}

func TestCorruptIsAnErrorNamingTheFile(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "{not json",
		"empty":     "",
		"truncated": `{"date": "2026-12-01T20:00:00Z"`,
		"trailing":  `{"date": "2026-12-01T20:00:00Z"} {}`,
		"wrongtype": `{"date": 12}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := open(t, t.TempDir())
			if err := os.WriteFile(f.Path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, ok, err := f.Load()
			if !errors.Is(err, statedir.ErrCorrupt) || ok {
				t.Fatalf("Load = ok %v, err %v; want ErrCorrupt", ok, err)
			}
			if !strings.Contains(err.Error(), f.Path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name %s on one line", err, f.Path)
			}
		})
	}
}

func TestUnreadableIsAnError(t *testing.T) {
	f := open(t, t.TempDir())
	// A directory where the file should be: unreadable even for root.
	if err := os.Mkdir(f.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	_, ok, err := f.Load()
	if err == nil || ok || !strings.Contains(err.Error(), f.Path) {
		t.Fatalf("Load = ok %v, err %v; want an error naming %s", ok, err, f.Path)
	}
	if errors.Is(err, statedir.ErrCorrupt) {
		t.Fatalf("an unreadable file is not a corrupt one: %v", err)
	}
}

func TestFailedStoreKeepsTheOldContents(t *testing.T) {
	dir := t.TempDir()
	f := open(t, dir)
	old := seen{Date: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := f.Store(old); err != nil {
		t.Fatal(err)
	}
	// Encoding fails before anything is written.
	bad, _ := statedir.Open[map[string]any](dir, "index.json")
	if err := bad.Store(map[string]any{"x": make(chan int)}); err == nil {
		t.Fatal("Store of an unencodable value succeeded")
	}
	// Renaming fails after the temporary file was written: the target is
	// a non-empty directory.
	blocked := open(t, filepath.Join(dir, "sub"))
	if err := os.MkdirAll(filepath.Join(blocked.Path, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := blocked.Store(old); err == nil {
		t.Fatal("Store over a directory succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "sub")); len(entries) != 1 {
		t.Fatalf("failed Store left %v behind", entries)
	}
	got, ok, err := f.Load()
	if err != nil || !ok || !got.Date.Equal(old.Date) {
		t.Fatalf("after failed stores Load = %+v, %v, %v; want the old contents", got, ok, err)
	}
}

func TestUpdateLosesNoChange(t *testing.T) {
	dir := t.TempDir()
	type counter struct{ N int }
	f, err := statedir.Open[counter](dir, "count.json")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A File value of its own, as a second process would have.
			g := statedir.File[counter]{Path: f.Path}
			if err := g.Update(func(c *counter) (bool, error) { c.N++; return true, nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _, err := f.Load()
	if err != nil || got.N != 20 {
		t.Fatalf("after 20 updates N = %d (%v), want 20", got.N, err)
	}
	// An update that reports no change writes nothing.
	before, _ := os.Stat(f.Path)
	if err := f.Update(func(c *counter) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(f.Path); !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("an unchanged update rewrote the file")
	}
	// A corrupt file stops updates instead of being overwritten.
	os.WriteFile(f.Path, []byte("{"), 0o644)
	if err := f.Update(func(c *counter) (bool, error) { c.N = 1; return true, nil }); !errors.Is(err, statedir.ErrCorrupt) {
		t.Fatalf("Update over a corrupt file = %v, want ErrCorrupt", err)
	}
}

func TestOpenRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "../x.json", "a/b.json", "x", ".hidden.json"} {
		if _, err := statedir.Open[seen](t.TempDir(), name); err == nil {
			t.Errorf("Open(%q) succeeded", name)
		}
	}
	if _, err := statedir.Open[seen]("", "x.json"); err == nil {
		t.Error("Open with an empty directory succeeded")
	}
}

// TestMarks: marks remembered per app/env survive a reopen, an update that
// reports no change writes nothing, an emptied app/env is dropped, and a
// corrupt file is an error naming it.
func TestMarks(t *testing.T) {
	dir := t.TempDir()
	m, err := statedir.OpenMarks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Marks("hello/staging"); err != nil || len(got) != 0 {
		t.Fatalf("Marks before any write = %v, %v; want none", got, err)
	}
	at := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	mark := puller.SeenMark{Broken: puller.Broken{Reason: "health check: 503", Host: "i-1", At: at}, Epoch: "r1:x/17"}
	err = m.UpdateMarks("hello/staging", func(marks map[string]puller.SeenMark) (bool, error) {
		marks["1.1-1"] = mark
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := statedir.OpenMarks(dir)
	got, err := again.Marks("hello/staging")
	if err != nil || got["1.1-1"] != mark {
		t.Fatalf("Marks after a reopen = %v, %v; want %v", got, err, mark)
	}
	if other, _ := again.Marks("hello/production"); len(other) != 0 {
		t.Fatalf("another env remembers %v", other)
	}
	before, _ := os.ReadFile(m.File.Path)
	_ = m.UpdateMarks("hello/staging", func(marks map[string]puller.SeenMark) (bool, error) {
		marks["9.9"] = mark // changed in memory, but reported unchanged
		return false, nil
	})
	if after, _ := os.ReadFile(m.File.Path); string(after) != string(before) {
		t.Fatalf("an update reporting no change rewrote the file:\n%s", after)
	}
	_ = m.UpdateMarks("hello/staging", func(marks map[string]puller.SeenMark) (bool, error) {
		delete(marks, "1.1-1")
		return true, nil
	})
	if data, _ := os.ReadFile(m.File.Path); strings.Contains(string(data), "hello/staging") {
		t.Fatalf("an app/env with no marks left is still in the file:\n%s", data)
	}
	if err := os.WriteFile(m.File.Path, []byte("{broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Marks("hello/staging"); !errors.Is(err, statedir.ErrCorrupt) || !strings.Contains(err.Error(), m.File.Path) {
		t.Fatalf("Marks of a corrupt file: %v; want ErrCorrupt naming %s", err, m.File.Path)
	}
	if err := m.UpdateMarks("hello/staging", func(map[string]puller.SeenMark) (bool, error) { return true, nil }); !errors.Is(err, statedir.ErrCorrupt) {
		t.Fatalf("UpdateMarks of a corrupt file: %v; want ErrCorrupt (never an empty memory)", err)
	}
}
