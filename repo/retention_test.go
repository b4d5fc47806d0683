package repo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/repo"
)

// clock is a clock every party of a test shares: real time plus an offset
// the test advances, so "two days later" needs no waiting.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// raceFixture is a repository whose changes and prunes share one clock.
type raceFixture struct {
	*fixture
	clk *clock
}

func newRaceFixture(t *testing.T) *raceFixture {
	f := newFixture(t)
	clk := &clock{}
	f.repo.Now = clk.Now
	return &raceFixture{fixture: f, clk: clk}
}

// with returns a handle on the same repository that calls hook after each
// step and sends deletes through onDelete first.
func (f *raceFixture) with(hook func(step string), onDelete func(key string)) *repo.Repo {
	r := *f.repo
	r.AfterStep = hook
	if onDelete != nil {
		r.Store = &deleteHook{Store: f.repo.Store, before: onDelete}
	}
	return &r
}

// deleteHook calls before ahead of every Delete.
type deleteHook struct {
	repo.Store
	before func(key string)
}

func (d *deleteHook) Delete(ctx context.Context, key string) error {
	d.before(key)
	return d.Store.Delete(ctx, key)
}

// pauseAt runs cmd with a repository that stops after step (once) and
// calls during while stopped; it returns cmd's error and whether the step
// was reached.
func (f *raceFixture) pauseAt(step string, cmd func(r *repo.Repo) error, during func()) (error, bool) {
	var once sync.Once
	reached := false
	r := f.with(func(s string) {
		if s == step {
			once.Do(func() { reached = true; during() })
		}
	}, nil)
	return cmd(r), reached
}

// prune runs a prune with the fixture's clock and fails the test on error.
func (f *raceFixture) prune(keep int, grace time.Duration) *repo.PruneReport {
	f.t.Helper()
	rep, err := f.repo.Prune(context.Background(), repo.PruneOptions{Keep: keep, Grace: grace})
	if err != nil {
		f.t.Fatalf("prune: %v", err)
	}
	return rep
}

// twoPrunes is what the field saw: a prune, the grace period passing, and
// another prune, all while one change is in flight.
func (f *raceFixture) twoPrunes(keep int, grace time.Duration) {
	f.prune(keep, grace)
	f.clk.advance(grace + time.Hour)
	f.prune(keep, grace)
}

// consistent fails the test when a dist references a missing pool file or
// by-hash index.
func (f *raceFixture) consistent(what string) {
	f.t.Helper()
	rep, err := f.repo.Verify(context.Background())
	if err != nil {
		f.t.Errorf("%s: the repository is broken: %v (problems %q)", what, err, rep.Problems)
	}
}

// has reports whether dist lists name at version.
func (f *raceFixture) has(dist, name, version string) bool {
	f.t.Helper()
	pkgs, err := f.repo.List(context.Background(), dist)
	if errors.Is(err, repo.ErrNoDist) {
		return false
	}
	if err != nil {
		f.t.Fatalf("list %s: %v", dist, err)
	}
	for _, p := range pkgs {
		if p.Name == name && p.Version == version {
			return true
		}
	}
	return false
}

// agrees fails the test when a command's outcome disagrees with the
// repository: want is whether the change should be visible given err.
func (f *raceFixture) agrees(what string, err error, dist, name, version string, presentOnSuccess bool) {
	f.t.Helper()
	got := f.has(dist, name, version)
	if want := presentOnSuccess == (err == nil); got != want {
		f.t.Errorf("%s reported %v, but %s lists %s=%s: %v", what, err, dist, name, version, got)
	}
}

var graces = []time.Duration{24 * time.Hour, 0}

// TestRetentionPromoteSpansTwoPrunes: a promote of an old version reads it
// from staging; while it is in flight, prune drops the version from
// staging and a later prune deletes its pool file. The promote must not
// commit a reference to the deleted file.
func TestRetentionPromoteSpansTwoPrunes(t *testing.T) {
	for _, grace := range graces {
		t.Run(fmt.Sprint("grace ", grace), func(t *testing.T) {
			f := newRaceFixture(t)
			ctx := context.Background()
			f.publish("staging", f.deb("hello", "1.0-1"))
			f.clk.advance(48 * time.Hour)
			f.publish("staging", f.deb("hello", "2.0-1"))
			f.publish("staging", f.deb("hello", "3.0-1"))
			ref := []repo.Ref{{Name: "hello", Version: "1.0-1"}}
			err, reached := f.pauseAt(repo.StepRead, func(r *repo.Repo) error {
				_, err := r.Promote(ctx, "staging", "production", ref)
				return err
			}, func() { f.twoPrunes(1, grace) })
			if !reached {
				t.Fatalf("the promote never reached %s: %v", repo.StepRead, err)
			}
			f.consistent("after the promote")
			f.agrees("promote", err, "production", "hello", "1.0-1", true)
		})
	}
}

// TestRetentionRepublishOldVersion: publishing an identical copy of an old,
// unreferenced version finds its pool file and keeps it; a prune between
// the pool step and the commit must not leave the commit referencing a
// deleted file.
func TestRetentionRepublishOldVersion(t *testing.T) {
	for _, grace := range graces {
		t.Run(fmt.Sprint("grace ", grace), func(t *testing.T) {
			f := newRaceFixture(t)
			ctx := context.Background()
			deb := f.deb("hello", "1.0-1")
			f.publish("staging", deb)
			f.publish("staging", f.deb("other", "1.0-1"))
			if _, err := f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "1.0-1"}}); err != nil {
				t.Fatal(err)
			}
			f.clk.advance(48 * time.Hour)
			err, reached := f.pauseAt(repo.StepPool, func(r *repo.Repo) error {
				_, err := r.Publish(ctx, "staging", "", []string{deb})
				return err
			}, func() { f.twoPrunes(1, grace) })
			if !reached {
				t.Fatalf("the publish never reached %s: %v", repo.StepPool, err)
			}
			f.consistent("after the publish")
			f.agrees("publish", err, "staging", "hello", "1.0-1", true)
		})
	}
}

// TestRetentionYankRestoresListedIndex: prune lists an old by-hash index as
// unreferenced; before it deletes it, a yank makes that very index current
// again (same bytes, same name). Prune must not then delete it.
func TestRetentionYankRestoresListedIndex(t *testing.T) {
	for _, grace := range graces {
		t.Run(fmt.Sprint("grace ", grace), func(t *testing.T) {
			f := newRaceFixture(t)
			ctx := context.Background()
			f.publish("staging", f.deb("hello", "1.0-1"))
			f.publish("staging", f.deb("hello", "2.0-1"))
			f.clk.advance(48 * time.Hour)
			// Prune passes, the grace period passing between them, until one
			// deletes the first index; the yank runs while that delete waits.
			var once sync.Once
			fired := false
			yanked := make(chan error, 1)
			pr := f.with(nil, func(key string) {
				if !strings.Contains(key, "/by-hash/") {
					return
				}
				once.Do(func() {
					fired = true
					go func() {
						_, err := f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "2.0-1"}})
						yanked <- err
					}()
					// The yank may wait for this prune; let the prune go on
					// after a while either way.
					select {
					case err := <-yanked:
						yanked <- err
					case <-time.After(2 * time.Second):
					}
				})
			})
			for pass := 0; ; pass++ {
				if _, err := pr.Prune(ctx, repo.PruneOptions{Keep: 0, Grace: grace}); err != nil {
					t.Fatal(err)
				}
				if fired {
					break
				}
				if pass == 3 {
					t.Fatal("no prune deleted the first index")
				}
				f.clk.advance(grace + time.Hour)
			}
			var err error
			select {
			case err = <-yanked:
			case <-time.After(time.Minute):
				t.Fatal("the yank never returned")
			}
			f.consistent("after the yank")
			f.agrees("yank", err, "staging", "hello", "2.0-1", false)
		})
	}
}

// change is one command the step matrix stops at each of its steps.
type change struct {
	name  string
	steps []string
	setup func(f *raceFixture) // before the clock jumps
	run   func(f *raceFixture, r *repo.Repo) error
	check func(f *raceFixture, err error)
}

func changes() []change {
	ctx := context.Background()
	return []change{
		{"publish a new version", allSteps,
			func(f *raceFixture) { f.publish("staging", f.deb("hello", "1.0-1"), f.deb("hello", "2.0-1")) },
			func(f *raceFixture, r *repo.Repo) error {
				_, err := r.Publish(ctx, "staging", "", []string{f.deb("hello", "3.0-1")})
				return err
			},
			func(f *raceFixture, err error) { f.agrees("publish", err, "staging", "hello", "3.0-1", true) }},
		{"publish an old version again", allSteps,
			func(f *raceFixture) {
				f.publish("staging", f.deb("hello", "1.0-1"), f.deb("other", "1.0-1"))
				f.repo.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "1.0-1"}})
			},
			func(f *raceFixture, r *repo.Repo) error {
				_, err := r.Publish(ctx, "staging", "", []string{f.deb("hello", "1.0-1")})
				return err
			},
			func(f *raceFixture, err error) { f.agrees("publish", err, "staging", "hello", "1.0-1", true) }},
		{"promote an old version", allSteps[1:],
			func(f *raceFixture) {
				f.publish("staging", f.deb("hello", "1.0-1"), f.deb("hello", "2.0-1"), f.deb("hello", "3.0-1"))
			},
			func(f *raceFixture, r *repo.Repo) error {
				_, err := r.Promote(ctx, "staging", "production", []repo.Ref{{Name: "hello", Version: "1.0-1"}})
				return err
			},
			func(f *raceFixture, err error) { f.agrees("promote", err, "production", "hello", "1.0-1", true) }},
		{"yank back to an older index", allSteps[1:],
			func(f *raceFixture) {
				f.publish("staging", f.deb("hello", "1.0-1"))
				f.publish("staging", f.deb("hello", "2.0-1"))
			},
			func(f *raceFixture, r *repo.Repo) error {
				_, err := r.Yank(ctx, "staging", []repo.Ref{{Name: "hello", Version: "2.0-1"}})
				return err
			},
			func(f *raceFixture, err error) { f.agrees("yank", err, "staging", "hello", "2.0-1", false) }},
	}
}

var allSteps = []string{repo.StepPool, repo.StepRead, repo.StepHold, repo.StepIndexes, repo.StepCommit, repo.StepRelease, repo.StepPackages}

// TestRetentionStepMatrix stops each change after each of its steps and
// runs two prunes (the grace period passing between them) while it is
// stopped: whatever the change then reports must be what the repository
// says, and no dist may reference a missing file.
func TestRetentionStepMatrix(t *testing.T) {
	for _, grace := range graces {
		for _, c := range changes() {
			for _, step := range c.steps {
				t.Run(fmt.Sprintf("grace %s/%s/at %s", grace, c.name, step), func(t *testing.T) {
					f := newRaceFixture(t)
					c.setup(f)
					f.clk.advance(48 * time.Hour)
					err, reached := f.pauseAt(step, func(r *repo.Repo) error { return c.run(f, r) },
						func() { f.twoPrunes(1, grace) })
					if !reached {
						t.Fatalf("%s never reached %s: %v", c.name, step, err)
					}
					f.consistent("after " + c.name)
					c.check(f, err)
				})
			}
		}
	}
}

// TestRetentionPruneStoppedAtDelete stops a prune at its first delete and
// runs each change to completion meanwhile (or lets the prune go on if the
// change waits for it).
func TestRetentionPruneStoppedAtDelete(t *testing.T) {
	for _, grace := range graces {
		for _, c := range changes() {
			t.Run(fmt.Sprintf("grace %s/%s", grace, c.name), func(t *testing.T) {
				f := newRaceFixture(t)
				c.setup(f)
				// Something for the prune to delete whatever the change.
				f.publish("junk", f.deb("junk", "1.0-1"))
				if _, err := f.repo.Yank(context.Background(), "junk", []repo.Ref{{Name: "junk", Version: "1.0-1"}}); err != nil {
					t.Fatal(err)
				}
				f.clk.advance(48 * time.Hour)
				f.prune(1, grace)
				// And something the first prune has not seen, for grace 0.
				f.publish("junk", f.deb("junk", "2.0-1"))
				if _, err := f.repo.Yank(context.Background(), "junk", []repo.Ref{{Name: "junk", Version: "2.0-1"}}); err != nil {
					t.Fatal(err)
				}
				f.clk.advance(grace + time.Hour)
				ran := false
				var once sync.Once
				done := make(chan error, 1)
				pr := f.with(nil, func(string) {
					once.Do(func() {
						ran = true
						go func() { done <- c.run(f, f.repo) }()
						select {
						case err := <-done:
							done <- err
						case <-time.After(2 * time.Second):
						}
					})
				})
				if _, err := pr.Prune(context.Background(), repo.PruneOptions{Keep: 1, Grace: grace}); err != nil {
					t.Fatal(err)
				}
				if !ran {
					t.Fatal("the prune deleted nothing")
				}
				var err error
				select {
				case err = <-done:
				case <-time.After(time.Minute):
					t.Fatal("the change never returned")
				}
				f.consistent("after " + c.name)
				c.check(f, err)
			})
		}
	}
}
