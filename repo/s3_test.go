package repo_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
	"github.com/aptfleet/aptfleet/repo/s3"
)

// s3Repo opens prefix of srv's bucket as a repository signed with key.
func s3Repo(t *testing.T, srv *s3server.Server, prefix string, key repotest.Key) *repo.Repo {
	t.Helper()
	st, err := s3.New(t.Context(), s3.Config{
		Bucket: srv.Bucket, Prefix: prefix, Region: srv.Region, Endpoint: srv.URL, PathStyle: srv.PathStyle,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:  srv.HTTPClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &repo.Repo{Store: st, Signer: key.Signer}
}

// TestOnS3 runs the repository operations on the S3 store against gofakes3
// in this process: concurrent publishers, promote, yank, verify, apt-get
// reading the bucket anonymously, and the request count of a publish not
// growing with the repository.
func TestOnS3(t *testing.T) {
	var requests atomic.Int64
	var failPuts atomic.Value // PUTs of keys containing this fail with 403
	failPuts.Store("")
	srv := s3server.GoFakeS3(t, "aptfleet", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			if suffix := failPuts.Load().(string); suffix != "" && r.Method == http.MethodPut && strings.Contains(r.URL.Path, suffix) {
				// 403 rather than 5xx, which the SDK retries with backoff.
				http.Error(w, "<Error><Code>AccessDenied</Code><Message>injected</Message></Error>", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	key := repotest.NewKey(t, t.TempDir(), "")
	debDir := t.TempDir()
	ctx := context.Background()

	t.Run("concurrent publishers", func(t *testing.T) {
		const publishers, rounds = 8, 5
		var paths []string
		for i := 0; i < publishers; i++ {
			paths = append(paths, debs.Write(t, debDir, debs.Spec{Name: fmt.Sprintf("app%d", i), Version: "1.0-1"}))
		}
		for round := 0; round < rounds; round++ {
			prefix := fmt.Sprintf("concurrent/%d", round)
			var wg sync.WaitGroup
			errs := make([]error, publishers)
			for i := 0; i < publishers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = s3Repo(t, srv, prefix, key).Publish(ctx, "staging", "", []string{paths[i]})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d publisher %d: %v", round, i, err)
				}
			}
			r := s3Repo(t, srv, prefix, key)
			pkgs, err := r.List(ctx, "staging")
			if err != nil || len(pkgs) != publishers {
				t.Fatalf("round %d: %d packages (%v), want %d", round, len(pkgs), err, publishers)
			}
			if _, err := r.Verify(ctx); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	})

	t.Run("promote, yank and apt", func(t *testing.T) {
		testenv.NeedTools(t, "apt-get")
		r := s3Repo(t, srv, "apt/hello", key)
		v1 := debs.Write(t, debDir, debs.Spec{Name: "hello", Version: "1.0-1"})
		v2 := debs.Write(t, debDir, debs.Spec{Name: "hello", Version: "2.0-1"})
		if _, err := r.Publish(ctx, "staging", "", []string{v1, v2}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: "2.0-1"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "2.0-1"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		for dist, want := range map[string]string{"staging": "hello_1.0-1_amd64.deb", "production": "hello_2.0-1_amd64.deb"} {
			apt := testenv.NewApt(t, srv.ObjectURL("apt/hello/"), dist, key.Keyring)
			if out, err := apt.Update(ctx); err != nil {
				t.Fatalf("%s: apt-get update: %v\n%s", dist, err, out)
			}
			if out, err := apt.Run(ctx, "download", "hello"); err != nil || !fileExists(apt.Downloaded(want)) {
				t.Fatalf("%s: apt-get download: %v\n%s", dist, err, out)
			}
		}
	})

	t.Run("S3 errors leave the dist as it was", func(t *testing.T) {
		r := s3Repo(t, srv, "errors", key)
		v1 := debs.Write(t, debDir, debs.Spec{Name: "hello", Version: "1.0-1"})
		if _, err := r.Publish(ctx, "staging", "", []string{v1}); err != nil {
			t.Fatal(err)
		}
		state := func() string {
			rc, _, err := r.Store.Get(ctx, "dists/staging/InRelease", "")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			return string(b)
		}
		before := state()
		v2 := debs.Write(t, debDir, debs.Spec{Name: "hello", Version: "2.0-1"})
		for _, suffix := range []string{".deb", "/by-hash/", "/InRelease"} {
			failPuts.Store(suffix)
			_, err := r.Publish(ctx, "staging", "", []string{v2})
			failPuts.Store("")
			if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "403") {
				t.Errorf("PUT %s failing: error %v, want a one-line error with the status", suffix, err)
			}
			if state() != before {
				t.Fatalf("PUT %s failing: InRelease changed", suffix)
			}
			if _, err := r.Verify(ctx); err != nil {
				t.Fatalf("PUT %s failing: %v", suffix, err)
			}
		}
		eq(t, "staging", listOf(t, r, "staging"), []string{"hello 1.0-1 amd64"})

		// A failure after the commit: the publish has happened, the stale
		// derived file is reported by verify and rewritten by the next change.
		failPuts.Store("/Packages.gz")
		_, err := r.Publish(ctx, "staging", "", []string{v2})
		failPuts.Store("")
		if err != nil {
			t.Fatalf("publish with a failing derived write: %v", err)
		}
		rep, err := r.Verify(ctx)
		if err != nil || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "Packages.gz") {
			t.Fatalf("verify after a failed derived write: %v %q", err, rep.Warnings)
		}
		v3 := debs.Write(t, debDir, debs.Spec{Name: "hello", Version: "3.0-1"})
		if _, err := r.Publish(ctx, "staging", "", []string{v3}); err != nil {
			t.Fatal(err)
		}
		if rep, err := r.Verify(ctx); err != nil || len(rep.Warnings) != 0 {
			t.Fatalf("verify after the next publish: %v %q", err, rep.Warnings)
		}
		eq(t, "staging", listOf(t, r, "staging"), []string{"hello 3.0-1 amd64", "hello 2.0-1 amd64", "hello 1.0-1 amd64"})
	})

	t.Run("requests per publish independent of size", func(t *testing.T) {
		count := func(existing int) int64 {
			prefix := fmt.Sprintf("size/%d", existing)
			r := s3Repo(t, srv, prefix, key)
			var seed []string
			for i := 0; i < existing; i++ {
				seed = append(seed, debs.Write(t, debDir, debs.Spec{Name: fmt.Sprintf("pkg%d", i%10), Version: fmt.Sprintf("1.%d-1", i/10)}))
			}
			if _, err := r.Publish(ctx, "staging", "", seed); err != nil {
				t.Fatal(err)
			}
			one := debs.Write(t, debDir, debs.Spec{Name: "one", Version: fmt.Sprint(existing)})
			before := requests.Load()
			if _, err := r.Publish(ctx, "staging", "", []string{one}); err != nil {
				t.Fatal(err)
			}
			return requests.Load() - before
		}
		small, large := count(10), count(300)
		if small != large {
			t.Errorf("a publish made %d requests into 10 versions, %d into 300", small, large)
		}
		t.Logf("%d S3 requests per publish", large)
	})
}

func fileExists(p string) bool {
	_, err := osStat(p)
	return err == nil
}

func listOf(t *testing.T, r *repo.Repo, dist string) []string {
	t.Helper()
	pkgs, err := r.List(context.Background(), dist)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pkgs {
		out = append(out, p.String())
	}
	return out
}
