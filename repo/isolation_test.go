package repo_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/repo"
)

// TestPruneSkipsUnreadableDist: a dist with a bad signature is skipped with
// a warning and everything its index files name is kept while the rest is
// pruned; with a dist whose index is garbage, no pool file is deleted.
func TestPruneSkipsUnreadableDist(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	clk := &clock{}
	f.repo.Now = clk.Now
	f.publish("qa", f.deb("onlyqa", "1.0-1"))
	f.publish("broken", f.deb("onlybroken", "1.0-1"))
	f.publish("staging", f.deb("hello", "1.0-1"), f.deb("gone", "1.0-1"), f.deb("gone2", "1.0-1"))
	if _, err := f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "gone", Version: "1.0-1"}}); err != nil {
		t.Fatal(err)
	}
	inr := filepath.Join(f.root, "dists", "qa", "InRelease")
	b, _ := os.ReadFile(inr)
	os.WriteFile(inr, bytes.Replace(b, []byte("Suite: qa"), []byte("Suite: xx"), 1), 0o644)
	clk.advance(time.Hour)
	for _, dry := range []bool{true, false} {
		rep, err := f.repo.Prune(ctx, repo.PruneOptions{Keep: 1, DryRun: dry})
		if err != nil {
			t.Fatalf("prune (dry run %v) with a badly signed dist: %v", dry, err)
		}
		eq(t, "skipped dists", rep.Skipped[:min(1, len(rep.Skipped))], []string{"qa: dists/qa/InRelease: repo: bad signature: openpgp: invalid signature: EdDSA verification failure"})
		if !contains(rep.Deleted, "pool/main/g/gone/gone_1.0-1_amd64.deb") {
			t.Errorf("dry run %v: the rest was not pruned: deleted %q", dry, rep.Deleted)
		}
		for _, k := range rep.Deleted {
			if strings.Contains(k, "onlyqa") || strings.HasPrefix(k, "dists/qa/") {
				t.Errorf("deleted %s, which the badly signed dist may refer to", k)
			}
		}
	}

	// An index that is garbage: what it names is unknown, so the pool stays.
	if _, err := f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "gone2", Version: "1.0-1"}}); err != nil {
		t.Fatal(err)
	}
	idx, _ := filepath.Glob(filepath.Join(f.root, "dists", "broken", "main", "binary-amd64", "by-hash", "SHA256", "*"))
	for _, p := range append(idx, filepath.Join(f.root, "dists", "broken", "main", "binary-amd64", "Packages.gz")) {
		os.WriteFile(p, []byte("garbage"), 0o644)
	}
	clk.advance(time.Hour)
	rep, err := f.repo.Prune(ctx, repo.PruneOptions{Keep: 1})
	if err != nil {
		t.Fatalf("prune with a garbage index: %v", err)
	}
	if len(rep.Skipped) != 2 {
		t.Errorf("skipped %q, want broken and qa", rep.Skipped)
	}
	for _, k := range rep.Deleted {
		if strings.HasPrefix(k, "pool/") || strings.HasPrefix(k, "dists/broken/") {
			t.Errorf("deleted %s although a dist with a garbage index may refer to it", k)
		}
	}
	for _, p := range []string{"pool/main/o/onlyqa/onlyqa_1.0-1_amd64.deb", "pool/main/o/onlybroken/onlybroken_1.0-1_amd64.deb", "pool/main/g/gone2/gone2_1.0-1_amd64.deb"} {
		if _, err := os.Stat(filepath.Join(f.root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestPublishRefusesGarbageEntries: a signed index carrying an entry that
// does not parse as a package (an invalid version) makes publish refuse,
// naming it, rather than carry it forward.
func TestPublishRefusesGarbageEntries(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.publish("staging", f.deb("hello", "1.0-1"))
	// Rewrite the index with a bad version, re-sign it.
	base := filepath.Join(f.root, "dists", "staging")
	inr, _ := os.ReadFile(filepath.Join(base, "InRelease"))
	text, err := f.key.Signer.Keyring().VerifyInRelease(inr)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := repo.ParseRelease(text)
	if err != nil {
		t.Fatal(err)
	}
	gz, _ := os.ReadFile(filepath.Join(base, "main", "binary-amd64", "Packages.gz"))
	zr, _ := gzip.NewReader(bytes.NewReader(gz))
	plain, _ := io.ReadAll(zr)
	plain = bytes.Replace(plain, []byte("Version: 1.0-1"), []byte("Version: 1.0-1!x"), 1)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(plain)
	zw.Close()
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	for i, rf := range rel.Files {
		switch rf.Path {
		case "main/binary-amd64/Packages":
			rel.Files[i].SHA256, rel.Files[i].Size = sum(plain), int64(len(plain))
		case "main/binary-amd64/Packages.gz":
			rel.Files[i].SHA256, rel.Files[i].Size = sum(zb.Bytes()), int64(zb.Len())
			os.WriteFile(filepath.Join(base, "main", "binary-amd64", "by-hash", "SHA256", sum(zb.Bytes())), zb.Bytes(), 0o644)
		}
	}
	signed, _, err := f.key.Signer.Sign(rel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "InRelease"), signed, 0o644)
	before, _ := os.ReadFile(filepath.Join(base, "InRelease"))

	_, err = f.repo.Publish(ctx, "staging", "", []string{f.deb("other", "1.0-1")})
	if err == nil || !strings.Contains(err.Error(), "1.0-1!x") {
		t.Fatalf("publish into a dist with a garbage entry: %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	if after, _ := os.ReadFile(filepath.Join(base, "InRelease")); !bytes.Equal(after, before) {
		t.Errorf("the refused publish changed the dist")
	}
}
