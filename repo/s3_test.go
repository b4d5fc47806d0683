package repo_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aptfleet/aptfleet/internal/testenv"
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
	srv := s3server.GoFakeS3(t, "aptfleet", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	key := repotest.NewKey(t, t.TempDir(), "")
	debs := t.TempDir()
	ctx := context.Background()

	t.Run("concurrent publishers", func(t *testing.T) {
		const publishers, rounds = 8, 5
		var paths []string
		for i := 0; i < publishers; i++ {
			paths = append(paths, repotest.WriteDeb(t, debs, repotest.Spec{Name: fmt.Sprintf("app%d", i), Version: "1.0-1"}))
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
		v1 := repotest.WriteDeb(t, debs, repotest.Spec{Name: "hello", Version: "1.0-1"})
		v2 := repotest.WriteDeb(t, debs, repotest.Spec{Name: "hello", Version: "2.0-1"})
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
			apt := repotest.NewApt(t, srv.ObjectURL("apt/hello/"), dist, key.Keyring)
			if out, err := apt.Update(ctx); err != nil {
				t.Fatalf("%s: apt-get update: %v\n%s", dist, err, out)
			}
			if out, err := apt.Run(ctx, "download", "hello"); err != nil || !fileExists(apt.Downloaded(want)) {
				t.Fatalf("%s: apt-get download: %v\n%s", dist, err, out)
			}
		}
	})

	t.Run("requests per publish independent of size", func(t *testing.T) {
		count := func(existing int) int64 {
			prefix := fmt.Sprintf("size/%d", existing)
			r := s3Repo(t, srv, prefix, key)
			var seed []string
			for i := 0; i < existing; i++ {
				seed = append(seed, repotest.WriteDeb(t, debs, repotest.Spec{Name: fmt.Sprintf("pkg%d", i%10), Version: fmt.Sprintf("1.%d-1", i/10)}))
			}
			if _, err := r.Publish(ctx, "staging", "", seed); err != nil {
				t.Fatal(err)
			}
			one := repotest.WriteDeb(t, debs, repotest.Spec{Name: "one", Version: fmt.Sprint(existing)})
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
