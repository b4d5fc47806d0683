package repo_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/debs"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// TestConcurrentPublishers runs 8 publishers at once, each with its own
// store handle, 20 times: every package must be there every time.
func TestConcurrentPublishers(t *testing.T) {
	const publishers, rounds = 8, 20
	debDir := t.TempDir()
	var paths []string
	for i := 0; i < publishers; i++ {
		paths = append(paths, debs.Write(t, debDir, debs.Spec{Name: fmt.Sprintf("app%d", i), Version: "1.0-1"}))
	}
	key := repotest.NewKey(t, t.TempDir(), "")
	retries := 0
	for round := 0; round < rounds; round++ {
		root := t.TempDir()
		var wg sync.WaitGroup
		errs := make([]error, publishers)
		var lost atomic.Int64
		for i := 0; i < publishers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := dir.Open(root)
				if err != nil {
					errs[i] = err
					return
				}
				r := &repo.Repo{Store: s, Signer: key.Signer, AfterStep: func(step string) {
					if step == repo.StepRead {
						lost.Add(1)
					}
				}}
				_, errs[i] = r.Publish(context.Background(), "staging", "", []string{paths[i]})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: publisher %d: %v", round, i, err)
			}
		}
		retries += int(lost.Load()) - publishers
		s, _ := dir.Open(root)
		r := &repo.Repo{Store: s, Signer: key.Signer}
		pkgs, err := r.List(context.Background(), "staging")
		if err != nil {
			t.Fatal(err)
		}
		if len(pkgs) != publishers {
			t.Fatalf("round %d: %d packages in staging, want %d: %v", round, len(pkgs), publishers, pkgs)
		}
		if _, err := r.Verify(context.Background()); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	t.Logf("%d rounds of %d publishers: every package present; %d commit retries in all", rounds, publishers, retries)
}

// TestAptUpdateDuringPublishes runs apt-get update in a loop while 100
// publishes land: not one update may fail or warn.
func TestAptUpdateDuringPublishes(t *testing.T) {
	testenv.NeedTools(t, "apt-get")
	const total, publishers = 100, 2
	f := newFixture(t)
	f.publish("staging", f.deb("hello", "0.1-1"))
	var paths []string
	for i := 0; i < total; i++ {
		paths = append(paths, f.deb("hello", fmt.Sprintf("1.%d-1", i)))
	}
	apt := testenv.NewApt(t, f.serve(), "staging", f.key.Keyring)
	ctx := context.Background()

	var published atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	var pubErr atomic.Value
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < total; i += publishers {
				if _, err := f.repo.Publish(ctx, "staging", "", []string{paths[i]}); err != nil {
					pubErr.Store(err)
					return
				}
				published.Add(1)
				time.Sleep(40 * time.Millisecond)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	updates, failures := 0, 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		out, err := apt.Update(ctx)
		updates++
		if err != nil {
			failures++
			t.Errorf("apt-get update %d failed after %d publishes: %v\n%s", updates, published.Load(), err, out)
		}
	}
	if err := pubErr.Load(); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if published.Load() != total || updates < 5 {
		t.Fatalf("%d publishes, %d updates: the loop did not overlap the publishes", published.Load(), updates)
	}
	if got := len(f.list("staging")); got != total+1 {
		t.Errorf("staging lists %d versions, want %d", got, total+1)
	}
	t.Logf("%d publishes, %d apt-get updates, %d failures", total, updates, failures)
}

// crashEnv names the step at which the re-executed test binary dies.
const crashEnv = "APTFLEET_TEST_CRASH"

// TestCrashHelper is not a test: it is the publisher process that
// TestPublisherKilled starts and kills. It does nothing in a normal run.
func TestCrashHelper(t *testing.T) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		return
	}
	// spec: step|root|keyfile|deb...
	parts := strings.Split(spec, "|")
	s, err := dir.Open(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	signer, err := repo.LoadSigner(parts[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &repo.Repo{Store: s, Signer: signer, AfterStep: func(step string) {
		if step == parts[0] {
			os.Exit(137)
		}
	}}
	for {
		if _, err := r.Publish(context.Background(), "staging", "", parts[3:]); err != nil {
			t.Fatal(err)
		}
		if parts[0] != "loop" {
			return
		}
	}
}

// TestPublisherKilled kills a publisher at every step of a publish, and at
// random moments, and checks that the repository stays valid for Verify
// and apt, and that the next publish completes with every package.
func TestPublisherKilled(t *testing.T) {
	steps := []string{repo.StepPool, repo.StepRead, repo.StepIndexes, repo.StepCommit, repo.StepRelease, repo.StepPackages}
	kills := []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond}
	haveApt := true
	if _, err := exec.LookPath("apt-get"); err != nil {
		testenv.Skip(t, "apt-get is not installed")
		haveApt = false
	}
	type trial struct {
		name  string
		step  string
		after time.Duration
	}
	var trials []trial
	for _, s := range steps {
		trials = append(trials, trial{"at " + s, s, 0})
	}
	for _, d := range kills {
		trials = append(trials, trial{fmt.Sprint("SIGKILL after ", d), "loop", d})
	}
	for _, tt := range trials {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			f.publish("staging", f.deb("hello", "1.0-1"))
			victim := f.deb("victim", "1.0-1")
			spec := strings.Join([]string{tt.step, f.root, f.key.File, victim}, "|")
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashEnv+"="+spec)
			out := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if tt.after > 0 {
				time.Sleep(tt.after)
				cmd.Process.Signal(syscall.SIGKILL)
			}
			err := cmd.Wait()
			ee, ok := err.(*exec.ExitError)
			if !ok || (tt.after == 0 && ee.ExitCode() != 137) {
				t.Fatalf("publisher did not die as planned: %v\n%s", err, out)
			}
			// The repository is valid right after the crash.
			if _, err := f.repo.Verify(ctx); err != nil {
				t.Fatalf("after the crash: %v", err)
			}
			if haveApt {
				apt := testenv.NewApt(t, f.serve(), "staging", f.key.Keyring)
				if out, err := apt.Update(ctx); err != nil {
					t.Fatalf("apt-get update after the crash: %v\n%s", err, out)
				}
			}
			// The next publish (retrying the victim too) completes cleanly.
			f.publish("staging", victim, f.deb("after", "1.0-1"))
			got := f.list("staging")
			eq(t, "staging", got, []string{"after 1.0-1 amd64", "hello 1.0-1 amd64", "victim 1.0-1 amd64"})
			rep := f.verify()
			if len(rep.Warnings) != 0 {
				t.Errorf("derived files not repaired by the next publish: %q", rep.Warnings)
			}
			if matches, _ := filepath.Glob(filepath.Join(f.root, ".aptfleet.tmp", "*")); len(matches) > 0 && tt.after == 0 {
				t.Errorf("temporary files left: %q", matches)
			}
		})
	}
}
