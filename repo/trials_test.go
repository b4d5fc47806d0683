package repo_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
	"github.com/aptfleet/aptfleet/repo/s3"
)

var (
	trials = flag.Int("retention.trials", 2, "randomized retention trials per store (TestRetentionTrials)")
	rounds = flag.Int("retention.rounds", 6, "rounds per randomized retention trial")
)

// workerEnv carries a trialWorker's job to the re-executed test binary.
const workerEnv = "APTFLEET_TEST_RETENTION_WORKER"

// trialWorker is one process of a randomized retention trial.
type trialWorker struct {
	Role    string   // publish, promote, yank, prune
	Ops     int      // how many commands it runs
	Seed    uint64   // its random choices
	Debs    []string // what publishers publish
	KeyFile string
	Window  time.Duration
	// The store: Dir, or an S3 server.
	Dir                              string
	Endpoint, Bucket, Prefix, Region string
	AccessKey, SecretKey             string
	Grace                            time.Duration // the pruners'
}

// TestRetentionWorker is not a test: it is the process TestRetentionTrials
// starts for each worker. It does nothing in a normal run.
func TestRetentionWorker(t *testing.T) {
	spec := os.Getenv(workerEnv)
	if spec == "" {
		return
	}
	var w trialWorker
	if err := json.Unmarshal([]byte(spec), &w); err != nil {
		t.Fatal(err)
	}
	signer, err := repo.LoadSigner(w.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st repo.Store
	if w.Dir != "" {
		st, err = dir.Open(w.Dir)
	} else {
		st, err = s3.New(context.Background(), s3.Config{Bucket: w.Bucket, Prefix: w.Prefix, Region: w.Region, Endpoint: w.Endpoint,
			PathStyle: true, Credentials: credentials.NewStaticCredentialsProvider(w.AccessKey, w.SecretKey, "")})
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &repo.Repo{Store: st, Signer: signer, Config: repo.Config{Window: w.Window}}
	rng := rand.New(rand.NewPCG(w.Seed, 17))
	ctx := context.Background()
	pickVersion := func(dist string) (string, bool) {
		pkgs, err := r.List(ctx, dist)
		if err != nil || len(pkgs) == 0 {
			return "", false
		}
		return pkgs[rng.IntN(len(pkgs))].Version, true
	}
	for i := 0; i < w.Ops; i++ {
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		switch w.Role {
		case "publish":
			if _, err := r.Publish(ctx, "staging", "", []string{w.Debs[rng.IntN(len(w.Debs))]}); err != nil {
				t.Fatalf("publish: %v", err)
			}
		case "promote":
			v, ok := pickVersion("staging")
			if !ok {
				continue
			}
			_, err := r.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: v}})
			// Another process may have dropped it from staging meanwhile.
			if err != nil && !strings.Contains(err.Error(), "is not in staging") && !errors.Is(err, repo.ErrNotFound) {
				t.Fatalf("promote: %v", err)
			}
		case "yank":
			dist := []string{"staging", "production"}[rng.IntN(2)]
			v, ok := pickVersion(dist)
			if !ok {
				continue
			}
			_, err := r.Yank(ctx, dist, []repo.Ref{{Name: "hello", Version: v}})
			if err != nil && !strings.Contains(err.Error(), "is not in "+dist) {
				t.Fatalf("yank: %v", err)
			}
		case "prune":
			if _, err := r.Prune(ctx, repo.PruneOptions{Keep: 1, Grace: w.Grace}); err != nil {
				t.Fatalf("prune: %v", err)
			}
		}
	}
}

// TestRetentionTrials runs randomized trials: in each round, publishers,
// a promoter, a yanker and two pruners (--keep 1, --grace 0) run as
// separate processes at once on one repository, and afterwards no dist may
// reference a missing object. -retention.trials sets the number of trials
// per store (docs/benchmarks.md has the counts of a long run).
func TestRetentionTrials(t *testing.T) {
	if os.Getenv(workerEnv) != "" {
		return
	}
	key := repotest.NewKey(t, t.TempDir(), "")
	debDir := t.TempDir()
	var debs []string
	for i := 1; i <= 12; i++ {
		debs = append(debs, repotest.WriteDeb(t, debDir, repotest.Spec{Name: "hello", Version: fmt.Sprintf("%d.0-1", i)}))
	}
	stores := []struct {
		name   string
		window time.Duration
		open   func(t *testing.T, trial int) (trialWorker, *repo.Repo)
	}{
		{"directory", 500 * time.Millisecond, func(t *testing.T, trial int) (trialWorker, *repo.Repo) {
			root := t.TempDir()
			s, err := dir.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			return trialWorker{Dir: root}, &repo.Repo{Store: s, Signer: key.Signer}
		}},
		{"versitygw", time.Second, func() func(t *testing.T, trial int) (trialWorker, *repo.Repo) {
			var srv *s3server.Server
			return func(t *testing.T, trial int) (trialWorker, *repo.Repo) {
				if srv == nil {
					srv = s3server.Versitygw(t, s3server.VersitygwOptions{})
				}
				prefix := fmt.Sprintf("trial%d", trial)
				return trialWorker{Endpoint: srv.URL, Bucket: srv.Bucket, Prefix: prefix, Region: srv.Region,
					AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}, s3Repo(t, srv, prefix, key)
			}
		}()},
	}
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			violations, commands := 0, 0
			for trial := 0; trial < *trials; trial++ {
				base, r := store.open(t, trial)
				if _, err := r.Publish(context.Background(), "staging", "", debs[:3]); err != nil {
					t.Fatal(err)
				}
				roles := []string{"publish", "publish", "promote", "yank", "prune", "prune"}
				for round := 0; round < *rounds; round++ {
					var wg sync.WaitGroup
					errs := make([]error, len(roles))
					for i, role := range roles {
						w := base
						w.Role, w.Ops, w.Seed = role, 3, uint64(trial*1000+round*10+i)
						w.Debs, w.KeyFile, w.Window = debs, key.File, store.window
						spec, _ := json.Marshal(w)
						wg.Add(1)
						go func() {
							defer wg.Done()
							cmd := exec.Command(os.Args[0], "-test.run=^TestRetentionWorker$", "-test.count=1")
							cmd.Env = append(os.Environ(), workerEnv+"="+string(spec))
							if out, err := cmd.CombinedOutput(); err != nil {
								errs[i] = fmt.Errorf("%s worker: %v\n%s", role, err, out)
							}
						}()
					}
					wg.Wait()
					commands += len(roles) * 3
					for _, err := range errs {
						if err != nil {
							t.Errorf("trial %d round %d: %v", trial, round, err)
						}
					}
					if rep, err := r.Verify(context.Background()); err != nil {
						violations++
						t.Errorf("trial %d round %d: %v (%q)", trial, round, err, rep.Problems)
					}
				}
			}
			t.Logf("%s: %d trials of %d rounds, %d processes a round (2 pruners), %d commands: %d rounds left a dist referencing a missing object",
				store.name, *trials, *rounds, 6, commands, violations)
		})
	}
}
