package redisstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller"
)

// Twenty hosts join at once for two places: two get them; the others see a
// full stage until a canary stops renewing, when one replacement, and only
// one, takes its place; a pass wakes the waiters and opens the stage.
func TestCanaryPlaces(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t, nil)
	const app, env, v = "hello", "production", "1.4.0-1"
	ttl := 400 * time.Millisecond
	wake := s.Wake(ctx, app, env)

	join := func(hosts []string) []string {
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		for _, h := range hosts {
			wg.Go(func() {
				cv, err := s.Join(ctx, app, env, v, h, "srv-"+h, 2, ttl)
				if err != nil {
					t.Error(err)
					return
				}
				if cv.Canary {
					mu.Lock()
					got = append(got, h)
					mu.Unlock()
					if !cv.New || cv.Stage != puller.CanaryRunning || cv.Want != 2 {
						t.Errorf("%s: view %+v, want a new place in a running stage of 2", h, cv)
					}
				}
			})
		}
		wg.Wait()
		slices.Sort(got)
		return got
	}
	var hosts []string
	for i := range 20 {
		hosts = append(hosts, fmt.Sprintf("i-%02d", i))
	}
	canaries := join(hosts)
	if len(canaries) != 2 {
		t.Fatalf("canaries %v, want 2", canaries)
	}
	if stage, vacancy, _, err := s.Peek(ctx, app, env, v, "i-99"); err != nil || stage != puller.CanaryRunning || vacancy {
		t.Fatalf("Peek = %q, vacancy %v, %v; want a full running stage", stage, vacancy, err)
	}
	if _, free, mine, _ := s.Peek(ctx, app, env, v, canaries[0]); free || !mine {
		t.Fatalf("Peek by the canary %s: free %v, mine %v", canaries[0], free, mine)
	}
	// A canary joining again keeps its place (New false).
	if cv, err := s.Join(ctx, app, env, v, canaries[0], "srv-"+canaries[0], 2, ttl); err != nil || !cv.Canary || cv.New {
		t.Fatalf("second Join of %s = %+v, %v", canaries[0], cv, err)
	}
	// canaries[0] keeps renewing, canaries[1] dies.
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if cv, err := s.Renew(ctx, app, env, v, canaries[0], ttl); err != nil || !cv.Canary {
			t.Fatalf("Renew = %+v, %v", cv, err)
		}
		time.Sleep(ttl / 4)
	}
	if _, vacancy, _, _ := s.Peek(ctx, app, env, v, "i-99"); !vacancy {
		t.Fatal("Peek shows no free place after a canary stopped renewing")
	}
	var rest []string
	for _, h := range hosts {
		if !slices.Contains(canaries, h) {
			rest = append(rest, h)
		}
	}
	repl := join(rest)
	if len(repl) != 1 {
		t.Fatalf("replacements %v, want exactly 1", repl)
	}
	if cv, _ := s.Renew(ctx, app, env, v, canaries[1], ttl); cv.Canary {
		t.Errorf("the dead canary %s still holds a place: %+v", canaries[1], cv)
	}
	if _, err := s.Ready(ctx, app, env, v, canaries[0]); err != nil {
		t.Fatal(err)
	}
	cv, err := s.Ready(ctx, app, env, v, repl[0])
	if err != nil || cv.Ready != 2 || !slices.Equal(cv.Servers, []string{"srv-" + canaries[0], "srv-" + repl[0]}) {
		t.Fatalf("Ready = %+v, %v; want 2 ready with their server names", cv, err)
	}
	select {
	case <-wake:
	default:
	}
	stage, moved, err := s.Pass(ctx, app, env, v, canaries[0], "analysis passed: ...", false)
	if err != nil || !moved || stage != puller.CanaryPassed {
		t.Fatalf("Pass = %q, %v, %v", stage, moved, err)
	}
	if _, moved, _ := s.Pass(ctx, app, env, v, repl[0], "analysis passed: ...", false); moved {
		t.Error("a second Pass moved the stage again")
	}
	select {
	case <-wake:
	case <-time.After(2 * time.Second):
		t.Fatal("no wake after the pass")
	}
	if stage, vacancy, _, _ := s.Peek(ctx, app, env, v, "i-99"); !stage.Open() || vacancy {
		t.Fatalf("Peek after the pass = %q, %v", stage, vacancy)
	}
	if cv, _ := s.Join(ctx, app, env, v, rest[5], "", 2, ttl); cv.Canary || !cv.Stage.Open() {
		t.Errorf("Join after the pass = %+v, want no place, stage open", cv)
	}
	h, err := s.History(ctx, app, env, 0)
	if err != nil || len(h) != 1 || h[0].Kind != event.CanaryPassed || h[0].Reason != "analysis passed: ..." {
		t.Errorf("history %+v, %v; want the canary_passed with its figures", h, err)
	}
	if keys, _ := rdb.Keys(ctx, "t:*").Result(); len(keys) != 2 {
		t.Errorf("keys %v: want only the rollout hash and the history", keys)
	}
}

// Manual promotion: a pass waits in awaiting_promotion until Promote; Abort
// marks the version broken and finishes its rollout in the same step; a
// version unbroken afterwards opens a fresh stage.
func TestCanaryPromoteAbort(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, nil)
	const app, env = "hello", "production"
	ttl := time.Minute
	op := func(k event.Kind, v string) event.Deploy {
		ev := event.New(k, app, env, v, "", time.Now())
		ev.Actor, ev.Reason = "jane@bastion", "looks fine"
		return ev
	}
	if _, err := s.Promote(ctx, app, env, "1.0", op(event.CanaryPromoted, "1.0")); !errors.Is(err, ErrNoCanary) {
		t.Fatalf("Promote without a stage: %v", err)
	}
	if _, err := s.Join(ctx, app, env, "1.0", "i-1", "", 1, ttl); err != nil {
		t.Fatal(err)
	}
	if stage, _, _ := s.Pass(ctx, app, env, "1.0", "i-1", "analysis passed", true); stage != puller.CanaryAwaiting {
		t.Fatalf("manual pass: stage %q", stage)
	}
	if stage, vacancy, _, _ := s.Peek(ctx, app, env, "1.0", "i-99"); stage != puller.CanaryAwaiting || vacancy {
		t.Fatalf("Peek while awaiting = %q, %v", stage, vacancy)
	}
	raw, _ := s.ReadRaw(ctx, app, env)
	if got := raw.Rollouts["1.0"]["stage"]; got != "awaiting promotion" {
		t.Errorf("display stage %q while awaiting", got)
	}
	if before, err := s.Promote(ctx, app, env, "1.0", op(event.CanaryPromoted, "1.0")); err != nil || before != puller.CanaryAwaiting {
		t.Fatalf("Promote = %q, %v", before, err)
	}
	if _, err := s.Abort(ctx, app, env, "1.0", puller.Broken{Reason: "x"}, op(event.CanaryAborted, "1.0")); !errors.Is(err, ErrNoCanary) {
		t.Fatalf("Abort after the promotion: %v, want ErrNoCanary", err)
	}

	if _, err := s.Join(ctx, app, env, "2.0", "i-1", "", 1, ttl); err != nil {
		t.Fatal(err)
	}
	ev := op(event.CanaryAborted, "2.0")
	if _, err := s.Abort(ctx, app, env, "2.0", puller.Broken{Reason: "canary aborted by jane@bastion: looks bad", Host: ""}, ev); err != nil {
		t.Fatal(err)
	}
	b, _ := s.IsBroken(ctx, app, env, "2.0")
	r, _ := s.Rollout(ctx, app, env, "2.0")
	if b == nil || !strings.Contains(b.Reason, "aborted") || r.Finished.IsZero() {
		t.Fatalf("after Abort: mark %+v, rollout %+v; want marked and finished", b, r)
	}
	if cv, _ := s.Renew(ctx, app, env, "2.0", "i-1", ttl); cv.Stage != puller.CanaryAborted {
		t.Errorf("the canary's renewal sees %q, want aborted", cv.Stage)
	}
	if cv, _ := s.Join(ctx, app, env, "2.0", "i-2", "", 1, ttl); cv.Canary || !cv.Stage.Ended() {
		t.Errorf("Join of a broken version = %+v", cv)
	}
	if _, err := s.Unbreak(ctx, app, env, "2.0", op(event.Unbroken, "2.0")); err != nil {
		t.Fatal(err)
	}
	if stage, vacancy, _, _ := s.Peek(ctx, app, env, "2.0", "i-99"); !vacancy {
		t.Errorf("Peek after unbreak = %q, no vacancy", stage)
	}
	if cv, _ := s.Join(ctx, app, env, "2.0", "i-2", "", 1, ttl); !cv.Canary || cv.Stage != puller.CanaryRunning {
		t.Errorf("Join after unbreak = %+v, want a fresh stage with i-2 its canary", cv)
	}
}
