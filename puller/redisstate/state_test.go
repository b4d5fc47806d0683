package redisstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
)

func newStore(t *testing.T, now func() time.Time) (*Store, *redis.Client) {
	t.Helper()
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return New(rdb, Options{Prefix: "t:", Now: now}), rdb
}

// pinnedStore returns a store whose clock stands at start and moves only by
// advance.
func pinnedStore(t *testing.T, start time.Time) (s *Store, advance func(time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	now := start
	s, _ = newStore(t, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	return s, func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBrokenFirstMarkWins(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t, nil)
	var wg sync.WaitGroup
	firsts := make(chan string, 8)
	for _, h := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, err := s.MarkBroken(ctx, "hello", "staging", "1.1", puller.Broken{Reason: "health", Host: h})
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts <- h
			}
		}()
	}
	wg.Wait()
	close(firsts)
	var winners []string
	for h := range firsts {
		winners = append(winners, h)
	}
	if len(winners) != 1 {
		t.Fatalf("%d hosts set the mark (%v), want exactly 1", len(winners), winners)
	}
	b, err := s.IsBroken(ctx, "hello", "staging", "1.1")
	if err != nil || b == nil || b.Host != winners[0] || b.Reason != "health" {
		t.Fatalf("IsBroken = %+v, %v; want the mark of %s", b, err, winners[0])
	}
	if nb, _ := s.IsBroken(ctx, "hello", "staging", "1.2"); nb != nil {
		t.Errorf("1.2 reported broken: %+v", nb)
	}
	if keys, _ := rdb.Keys(ctx, "t:hello:staging:broken").Result(); len(keys) != 1 {
		t.Errorf("broken key not at the documented name: %v", keys)
	}
	r, _ := s.Rollout(ctx, "hello", "staging", "1.1")
	if r.Finished.IsZero() {
		t.Errorf("a broken mark did not finish the rollout: %+v", r)
	}
}

func TestRolloutCounts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, nil)
	for _, alive := range []int{3, 5, 4} {
		if err := s.StartRollout(ctx, "hello", "staging", "2.0", alive); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := s.Rollout(ctx, "hello", "staging", "2.0")
	if r.Total != 5 || r.Started.IsZero() || !r.Finished.IsZero() {
		t.Fatalf("after start: %+v, want total 5 (largest alive), started, not finished", r)
	}
	for i := 0; i < 4; i++ {
		if r, _ = s.FinishHost(ctx, "hello", "staging", "2.0", true); !r.Finished.IsZero() {
			t.Fatalf("finished after %d of 5: %+v", i+1, r)
		}
	}
	if r, _ = s.FinishHost(ctx, "hello", "staging", "2.0", true); r.Done != 5 || r.Finished.IsZero() {
		t.Fatalf("after 5 of 5: %+v, want done 5 and finished", r)
	}
	r, _ = s.FinishHost(ctx, "hello", "staging", "3.0", false)
	if r.Failed != 1 || r.Finished.IsZero() {
		t.Fatalf("a failure: %+v, want failed 1 and finished", r)
	}
	list, err := s.Rollouts(ctx, "hello", "staging")
	if err != nil || len(list) != 2 {
		t.Fatalf("Rollouts = %v, %v", list, err)
	}
}

func TestWaitRollout(t *testing.T) {
	s, advance := pinnedStore(t, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	ctx := context.Background()
	must(t, s.SetHost(ctx, "hello", "prod", "i-1", "1.0", puller.StateOK))
	must(t, s.SetHost(ctx, "hello", "prod", "i-2", "1.0", puller.StateOK))
	must(t, s.SetHost(ctx, "hello", "prod", "i-gone", "0.9", puller.StateOK))
	advance(time.Hour) // i-gone is now stale; i-1 and i-2 are refreshed below
	must(t, s.SetHost(ctx, "hello", "prod", "i-1", "2.0", puller.StateOK))
	must(t, s.SetHost(ctx, "hello", "prod", "i-2", "2.0", puller.StateDeploying))

	t.Run("times out while a host is deploying", func(t *testing.T) {
		c, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		_, err := s.WaitRollout(c, "hello", "prod", "2.0", WaitOptions{Poll: 20 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 of 2 live hosts") {
			t.Fatalf("err = %v, want a deadline naming 1 of 2 live hosts", err)
		}
	})
	t.Run("done when every live host is ok on the version", func(t *testing.T) {
		go func() {
			time.Sleep(50 * time.Millisecond)
			must(t, s.SetHost(ctx, "hello", "prod", "i-2", "2.0", puller.StateOK))
		}()
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := s.WaitRollout(c, "hello", "prod", "2.0", WaitOptions{Poll: 20 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("halted", func(t *testing.T) {
		must(t, s.SetHost(ctx, "hello", "prod", "i-2", "2.0", puller.StateRollingBack))
		_, err := s.MarkBroken(ctx, "hello", "prod", "3.0", puller.Broken{Reason: "health check: 503", Host: "i-2"})
		must(t, err)
		_, err = s.WaitRollout(ctx, "hello", "prod", "3.0", WaitOptions{Poll: 20 * time.Millisecond})
		var he *HaltedError
		if !errors.As(err, &he) || he.Broken.Host != "i-2" || !strings.Contains(err.Error(), "health check: 503") {
			t.Fatalf("err = %v, want a HaltedError with the reason", err)
		}
	})
	t.Run("status warns about two versions after the rollout ended", func(t *testing.T) {
		must(t, s.SetHost(ctx, "hello", "prod", "i-2", "1.0", puller.StateOK))
		st, err := s.Status(ctx, "hello", "prod", 0)
		must(t, err)
		if st.Latest == nil || st.Latest.Version != "3.0" || !strings.Contains(st.Warning, "2 versions") {
			t.Fatalf("status = %+v, want latest 3.0 and a 2-versions warning", st)
		}
		if len(st.Hosts) != 3 || st.Hosts[2].Name != "i-gone" || st.Hosts[2].Live {
			t.Errorf("hosts = %+v, want i-gone listed and not live", st.Hosts)
		}
	})
}

// TestStatusLiveDone: a rollout whose total counts a host that died before
// finishing never finishes; Status says when every live host is ok on it.
func TestStatusLiveDone(t *testing.T) {
	s, advance := pinnedStore(t, time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC))
	ctx := context.Background()
	must(t, s.StartRollout(ctx, "hello", "prod", "2.0", 3))
	must(t, s.SetHost(ctx, "hello", "prod", "i-dead", "1.0", puller.StateDeploying))
	advance(time.Hour)
	must(t, s.SetHost(ctx, "hello", "prod", "i-1", "2.0", puller.StateOK))
	must(t, s.SetHost(ctx, "hello", "prod", "i-2", "2.0", puller.StateDeploying))
	st, err := s.Status(ctx, "hello", "prod", 10*time.Minute)
	must(t, err)
	if st.LiveDone {
		t.Errorf("LiveDone while i-2 is still deploying: %+v", st)
	}
	for _, h := range []string{"i-1", "i-2"} {
		_, err := s.FinishHost(ctx, "hello", "prod", "2.0", true)
		must(t, err)
		must(t, s.SetHost(ctx, "hello", "prod", h, "2.0", puller.StateOK))
	}
	st, err = s.Status(ctx, "hello", "prod", 10*time.Minute)
	must(t, err)
	if st.Latest == nil || !st.Latest.Finished.IsZero() || !st.LiveDone || st.Warning != "" {
		t.Errorf("status = %+v, want the rollout unfinished (2 of 3) and done on every live host", st)
	}
}

// TestStepDownAndJoin: a rollback starts a finished rollout anew, once; a
// bootstrapped host counts in a running rollout and in no other.
func TestStepDownAndJoin(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, nil)
	if _, joined, err := s.JoinRollout(ctx, "hello", "prod", "1.0"); err != nil || joined {
		t.Fatalf("join with no rollout: joined %v, %v; want false (a first boot starts none)", joined, err)
	}
	if rs, _ := s.Rollouts(ctx, "hello", "prod"); len(rs) != 0 {
		t.Fatalf("a join with no rollout wrote one: %+v", rs)
	}
	if err := s.StartRollout(ctx, "hello", "prod", "1.1", 2); err != nil {
		t.Fatal(err)
	}
	s.FinishHost(ctx, "hello", "prod", "1.1", true)
	if r, joined, err := s.JoinRollout(ctx, "hello", "prod", "1.1"); err != nil || !joined || r.Total != 3 || r.Done != 2 {
		t.Fatalf("join a running rollout: %+v joined %v %v; want total 3, done 2", r, joined, err)
	}
	s.StartRollout(ctx, "hello", "prod", "1.1", 3) // the new host is live now
	r, _ := s.FinishHost(ctx, "hello", "prod", "1.1", true)
	if r.Done != 3 || r.Finished.IsZero() {
		t.Fatalf("after the last host: %+v, want done 3 of 3, finished", r)
	}
	if _, joined, _ := s.JoinRollout(ctx, "hello", "prod", "1.1"); joined {
		t.Fatal("joined a finished rollout")
	}
	// A rollback to 1.1: the first host to step down starts it anew, the
	// others count in it.
	for i := 0; i < 3; i++ {
		if err := s.StepDown(ctx, "hello", "prod", "1.1", 3); err != nil {
			t.Fatal(err)
		}
	}
	r, _ = s.Rollout(ctx, "hello", "prod", "1.1")
	if r.Done != 0 || r.Total != 3 || !r.Finished.IsZero() {
		t.Fatalf("after the step downs: %+v, want a new rollout of 3, none done", r)
	}
	for i := 0; i < 3; i++ {
		r, _ = s.FinishHost(ctx, "hello", "prod", "1.1", true)
	}
	if r.Done != 3 || r.Finished.IsZero() {
		t.Fatalf("step-down rollout: %+v, want done and finished", r)
	}
	h, err := s.History(ctx, "hello", "prod", 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range h {
		kinds = append(kinds, fmt.Sprintf("%s %s %d/%d", e.Kind, e.Version, e.Done, e.Total))
	}
	want := "rollout_started 1.1 0/2, rollout_done 1.1 3/3, rollout_started 1.1 0/3, rollout_done 1.1 3/3"
	if got := strings.Join(kinds, ", "); got != want {
		t.Errorf("history: %s\nwant:    %s", got, want)
	}
}

// TestRestoreBroken: a restored mark comes back as it was remembered, a mark
// in force is kept, and no rollout is created.
func TestRestoreBroken(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t, nil)
	at := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	if _, err := s.MarkBroken(ctx, "hello", "staging", "1.2", puller.Broken{Reason: "in force", Host: "b", At: at}); err != nil {
		t.Fatal(err)
	}
	must(t, s.RestoreBroken(ctx, "hello", "staging", map[string]puller.Broken{
		"1.1": {Reason: "health check: 503", Host: "a", At: at},
		"1.2": {Reason: "remembered", Host: "c", At: at},
	}))
	got, err := s.Broken(ctx, "hello", "staging")
	must(t, err)
	if b := got["1.1"]; b.Reason != "health check: 503" || b.Host != "a" || !b.At.Equal(at) {
		t.Errorf("restored mark = %+v, want the remembered one", b)
	}
	if b := got["1.2"]; b.Reason != "in force" || b.Host != "b" {
		t.Errorf("mark in force = %+v, want it kept", b)
	}
	if n, _ := rdb.Exists(ctx, "t:hello:staging:rollout:1.1").Result(); n != 0 {
		t.Error("restoring a mark created a rollout")
	}
	must(t, s.RestoreBroken(ctx, "hello", "staging", nil))
}

// The next reader drops host records not rewritten for ForgetAfter and says
// how many; fresh records and records that do not parse stay.
func TestReadRawForgetsOldHosts(t *testing.T) {
	clock := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	s, rdb := newStore(t, func() time.Time { return clock })
	s.forgetAfter = 24 * time.Hour
	ctx := context.Background()
	must(t, s.SetHost(ctx, "hello", "prod", "i-old", "1.0", puller.StateOK))
	clock = clock.Add(23 * time.Hour)
	must(t, s.SetHost(ctx, "hello", "prod", "i-new", "1.0", puller.StateOK))
	must(t, rdb.HSet(ctx, "t:hello:prod:hosts", "i-junk", "not json").Err())
	clock = clock.Add(2 * time.Hour) // i-old is 25h old, i-new 2h
	raw, err := s.ReadRaw(ctx, "hello", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if raw.Forgotten != 1 || len(raw.Hosts) != 2 || raw.Hosts["i-old"] != "" {
		t.Errorf("forgotten %d, hosts %v; want i-old forgotten, i-new and i-junk kept", raw.Forgotten, raw.Hosts)
	}
	if n, _ := rdb.HLen(ctx, "t:hello:prod:hosts").Result(); n != 2 {
		t.Errorf("%d records left in Redis, want 2", n)
	}
	if raw, _ := s.ReadRaw(ctx, "hello", "prod"); raw.Forgotten != 0 {
		t.Errorf("a second read forgot %d more", raw.Forgotten)
	}
}
