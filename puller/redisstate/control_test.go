package redisstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller"
)

func TestPauseResume(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, _ := pinnedStore(t, start)
	if p, err := s.Paused(ctx, "hello", "prod"); err != nil || p != nil {
		t.Fatalf("fresh app/env: paused %+v, err %v", p, err)
	}
	ev := event.New(event.Paused, "hello", "prod", "", "", start)
	ev.Actor, ev.Reason = "alice@bastion", "migration"
	p, first, err := s.SetPause(ctx, "hello", "prod", Pause{Actor: "alice@bastion", Reason: "migration"}, ev)
	if err != nil || !first || p.Actor != "alice@bastion" || !p.At.Equal(start) {
		t.Fatalf("pause: %+v first %v err %v", p, first, err)
	}
	// A second pause keeps the first one's actor and reason.
	p, first, err = s.SetPause(ctx, "hello", "prod", Pause{Actor: "bob@ci", Reason: "other"}, ev)
	if err != nil || first || p.Actor != "alice@bastion" || p.Reason != "migration" {
		t.Fatalf("second pause: %+v first %v err %v", p, first, err)
	}
	if got, err := s.Paused(ctx, "hello", "prod"); err != nil || got == nil || got.Reason != "migration" {
		t.Fatalf("paused: %+v err %v", got, err)
	}
	if got, err := s.Paused(ctx, "hello", "staging"); err != nil || got != nil {
		t.Fatalf("pause leaked to another env: %+v err %v", got, err)
	}
	cleared, err := s.ClearPause(ctx, "hello", "prod", event.New(event.Resumed, "hello", "prod", "", "", start))
	if err != nil || cleared == nil || cleared.Actor != "alice@bastion" {
		t.Fatalf("resume: %+v err %v", cleared, err)
	}
	if cleared, err := s.ClearPause(ctx, "hello", "prod", event.Deploy{}); err != nil || cleared != nil {
		t.Fatalf("resume when not paused: %+v err %v", cleared, err)
	}
	h, err := s.History(ctx, "hello", "prod", 0)
	must(t, err)
	if len(h) != 2 || h[0].Kind != event.Paused || h[0].Actor != "alice@bastion" || h[1].Kind != event.Resumed {
		t.Fatalf("history after pause, pause, resume, resume: %+v", h)
	}
}

func TestHistoryCapped(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t, nil)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 3*HistoryLen; i++ {
		must(t, s.Record(ctx, event.New(event.Started, "hello", "prod", fmt.Sprintf("1.%d", i), "i-1", at)))
	}
	n, err := rdb.XLen(ctx, "t:hello:prod:history").Result()
	must(t, err)
	if n < HistoryLen || n > 2*HistoryLen {
		t.Fatalf("history holds %d entries after %d writes, want about %d", n, 3*HistoryLen, HistoryLen)
	}
	h, err := s.History(ctx, "hello", "prod", 5)
	must(t, err)
	if len(h) != 5 || h[4].Version != fmt.Sprintf("1.%d", 3*HistoryLen-1) || h[0].Version != fmt.Sprintf("1.%d", 3*HistoryLen-5) {
		t.Fatalf("last 5 entries, oldest first: %+v", h)
	}
	// An entry written by hand is kept as unreadable, with its id's time.
	must(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: "t:hello:prod:history", Values: []any{"junk", "\x1b[2J"}}).Err())
	h, err = s.History(ctx, "hello", "prod", 1)
	must(t, err)
	if len(h) != 1 || h[0].Unreadable == "" || h[0].Time.IsZero() {
		t.Fatalf("hand-written entry: %+v", h)
	}
}

func TestUnbreakResetsRollout(t *testing.T) {
	ctx := context.Background()
	s, rdb := newStore(t, nil)
	must(t, s.StartRollout(ctx, "hello", "prod", "1.2", 3))
	_, err := s.FinishHost(ctx, "hello", "prod", "1.2", true)
	must(t, err)
	_, err = s.FinishHost(ctx, "hello", "prod", "1.2", false)
	must(t, err)
	_, err = s.MarkBroken(ctx, "hello", "prod", "1.2", puller.Broken{Reason: "health 503", Host: "i-2"})
	must(t, err)
	before, _ := s.Rollout(ctx, "hello", "prod", "1.2")
	if before.Finished.IsZero() || before.Failed != 1 {
		t.Fatalf("halted rollout: %+v", before)
	}
	if _, err := s.Unbreak(ctx, "hello", "prod", "1.1", event.Deploy{}); !errors.Is(err, ErrNotBroken) {
		t.Fatalf("unbreak of a version not broken: %v", err)
	}
	u, err := s.Unbreak(ctx, "hello", "prod", "1.2", event.New(event.Unbroken, "hello", "prod", "1.2", "", time.Now()))
	must(t, err)
	if u.Mark.Reason != "health 503" || u.Failed != "1" || u.Finished == "" {
		t.Fatalf("cleared: %+v", u)
	}
	after, _ := s.Rollout(ctx, "hello", "prod", "1.2")
	if !after.Finished.IsZero() || after.Failed != 0 || after.Done != 1 || after.Total != 3 {
		t.Fatalf("rollout after unbreak: %+v", after)
	}
	if b, _ := s.IsBroken(ctx, "hello", "prod", "1.2"); b != nil {
		t.Fatalf("still broken: %+v", b)
	}
	if n, _ := rdb.XLen(ctx, "t:hello:prod:history").Result(); n != 2 {
		t.Fatalf("history entries: %d, want 2 (the rollout's start and the unbreak; the refused one records nothing)", n)
	}
}

func TestForget(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, nil)
	must(t, s.SetHost(ctx, "hello", "prod", "i-1", "1.0", puller.StateOK))
	if err := s.Forget(ctx, "hello", "prod", "i-2", event.Deploy{}); !errors.Is(err, ErrNoHost) {
		t.Fatalf("forget an unknown host: %v", err)
	}
	must(t, s.Forget(ctx, "hello", "prod", "i-1", event.New(event.Forgotten, "hello", "prod", "", "i-1", time.Now())))
	hosts, _ := s.Hosts(ctx, "hello", "prod")
	if len(hosts) != 0 {
		t.Fatalf("hosts after forget: %v", hosts)
	}
	if ok, err := s.Known(ctx, "hello", "prod"); err != nil || !ok {
		t.Fatalf("known after forget (history remains): %v %v", ok, err)
	}
	if ok, err := s.Known(ctx, "nope", "prod"); err != nil || ok {
		t.Fatalf("known unknown: %v %v", ok, err)
	}
}

// TestRolloutHistory: the first host to start a rollout and the host that
// completes it write its start and end in the history, once each.
func TestRolloutHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, nil)
	for i := 0; i < 3; i++ {
		must(t, s.StartRollout(ctx, "hello", "prod", "1.1", 2))
	}
	for i := 0; i < 2; i++ {
		_, err := s.FinishHost(ctx, "hello", "prod", "1.1", true)
		must(t, err)
	}
	_, err := s.FinishHost(ctx, "hello", "prod", "1.1", true) // a late count
	must(t, err)
	must(t, s.StartRollout(ctx, "hello", "prod", "1.2", 2))
	_, err = s.FinishHost(ctx, "hello", "prod", "1.2", false) // halted, not done
	must(t, err)
	h, err := s.History(ctx, "hello", "prod", 0)
	must(t, err)
	var got []string
	for _, e := range h {
		got = append(got, string(e.Kind)+" "+e.Version)
	}
	if want := "rollout_started 1.1,rollout_done 1.1,rollout_started 1.2"; strings.Join(got, ",") != want {
		t.Fatalf("history %q, want %q", strings.Join(got, ","), want)
	}
}
