package repo_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// countingStore counts requests and uploaded bytes.
type countingStore struct {
	repo.Store
	requests, uploaded atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key, inm string) (io.ReadCloser, repo.Object, error) {
	c.requests.Add(1)
	return c.Store.Get(ctx, key, inm)
}

func (c *countingStore) Head(ctx context.Context, key string) (repo.Object, error) {
	c.requests.Add(1)
	return c.Store.Head(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts repo.PutOptions) (repo.Object, error) {
	c.requests.Add(1)
	c.uploaded.Add(size)
	return c.Store.Put(ctx, key, body, size, opts)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.requests.Add(1)
	return c.Store.Delete(ctx, key)
}

func (c *countingStore) List(ctx context.Context, prefix string, fn func(repo.Object) error) error {
	c.requests.Add(1)
	return c.Store.List(ctx, prefix, fn)
}

var benchDebs struct {
	sync.Mutex
	dir  string
	made int
}

// seedDebs returns n .debs, 50 names x n/50 versions, built once per run.
func seedDebs(b *testing.B, n int) []string {
	benchDebs.Lock()
	defer benchDebs.Unlock()
	if benchDebs.dir == "" {
		d, err := os.MkdirTemp("", "aptfleet-bench-debs-")
		if err != nil {
			b.Fatal(err)
		}
		benchDebs.dir = d
	}
	var paths []string
	for i := 0; i < n; i++ {
		name, ver := fmt.Sprintf("app%02d", i%50), fmt.Sprintf("1.%d-1", i/50)
		p := filepath.Join(benchDebs.dir, name+"_"+ver+"_amd64.deb")
		if i >= benchDebs.made {
			debs.Write(b, benchDebs.dir, debs.Spec{Name: name, Version: ver})
		}
		paths = append(paths, p)
	}
	benchDebs.made = max(benchDebs.made, n)
	return paths
}

// BenchmarkPublish publishes one .deb into a dist that already lists N
// versions (50 names x N/50), on the local-directory store: the publish
// path's own cost (the S3 comparison with aptly is repo/internal/bench).
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("versions=%d", n), func(b *testing.B) {
			paths := seedDebs(b, n)
			s, err := dir.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			key := repotest.NewKey(b, b.TempDir(), "")
			ctx := context.Background()
			seed := &repo.Repo{Store: s, Signer: key.Signer}
			if _, err := seed.Publish(ctx, "staging", "", paths); err != nil {
				b.Fatal(err)
			}
			debDir := b.TempDir()
			var extra []string
			for i := 0; i < b.N; i++ {
				extra = append(extra, debs.Write(b, debDir, debs.Spec{Name: "new", Version: fmt.Sprintf("1.%d-1", i)}))
			}
			cs := &countingStore{Store: s}
			r := &repo.Repo{Store: cs, Signer: key.Signer}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.Publish(ctx, "staging", "", []string{extra[i]}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cs.requests.Load())/float64(b.N), "requests/op")
			b.ReportMetric(float64(cs.uploaded.Load())/float64(b.N), "uploaded-B/op")
		})
	}
}
