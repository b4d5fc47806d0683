package redislock_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/redislock"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func client(t testing.TB, addr, password string, tc *tls.Config) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, Password: password, TLSConfig: tc,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
		PoolSize: 4, MaxRetries: 1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// opts are short timings for tests; the guard pause (one TTL) is waited out by
// wait() when a test starts on an empty Redis.
func opts() redislock.Options {
	return redislock.Options{TTL: 400 * time.Millisecond, RenewEvery: 130 * time.Millisecond, PollEvery: 20 * time.Millisecond, Logger: quiet}
}

// try retries TryAcquire while admissions are paused after a fresh start, and
// returns the first answer that is not a pause.
func try(t testing.TB, s *redislock.Semaphore, req redislock.Request) (*redislock.Lease, error) {
	t.Helper()
	for i := 0; i < 100; i++ {
		l, err := s.TryAcquire(context.Background(), req)
		var busy *redislock.BusyError
		if errors.As(err, &busy) && busy.Paused > 0 {
			time.Sleep(busy.Paused + time.Millisecond)
			continue
		}
		return l, err
	}
	t.Fatalf("admissions still paused")
	return nil, nil
}

func mustAcquire(t testing.TB, s *redislock.Semaphore, req redislock.Request) *redislock.Lease {
	t.Helper()
	l, err := try(t, s, req)
	if err != nil {
		t.Fatalf("acquire %s for %s: %v", req.Key, req.Host, err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

func TestCapAndRelease(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	s := redislock.New(client(t, r.Addr, "", nil), opts())
	req := func(host string) redislock.Request {
		return redislock.Request{Key: "hello:staging", Host: host, Cap: 2}
	}

	a := mustAcquire(t, s, req("a"))
	mustAcquire(t, s, req("b"))
	_, err := try(t, s, req("c"))
	var busy *redislock.BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("third host: got %v, want a BusyError", err)
	}
	sort.Strings(busy.Holders)
	if fmt.Sprint(busy.Holders) != "[a b]" || busy.Cap != 2 {
		t.Fatalf("busy = %+v, want holders [a b] cap 2", busy)
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cause := context.Cause(a.Context()); !errors.Is(cause, redislock.ErrReleased) || a.Alive() {
		t.Fatalf("released lease: cause %v alive %v", cause, a.Alive())
	}
	mustAcquire(t, s, req("c"))
	hs, err := s.Holders(context.Background(), "hello:staging")
	sort.Strings(hs)
	if err != nil || fmt.Sprint(hs) != "[b c]" {
		t.Fatalf("holders = %v, %v; want [b c]", hs, err)
	}
}

func TestBadRequest(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	s := redislock.New(client(t, r.Addr, "", nil), opts())
	for _, tc := range []struct {
		name string
		req  redislock.Request
	}{
		{"cap zero", redislock.Request{Key: "a:b", Host: "h", Cap: 0}},
		{"negative cap", redislock.Request{Key: "a:b", Host: "h", Cap: -1}},
		{"no host", redislock.Request{Key: "a:b", Cap: 1}},
		{"no key", redislock.Request{Host: "h", Cap: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.TryAcquire(context.Background(), tc.req); err == nil {
				t.Fatal("TryAcquire: want an error")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := s.Acquire(ctx, func() redislock.Request { return tc.req })
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Acquire: got %v, want the request error at once", err)
			}
		})
	}
}

func TestSameHostReacquireRefreshes(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	s := redislock.New(client(t, r.Addr, "", nil), opts())
	req := redislock.Request{Key: "hello:prod", Host: "i-1", Cap: 1}
	old := mustAcquire(t, s, req)
	fresh := mustAcquire(t, s, req) // the same host (say, restarted) gets its slot back
	select {
	case <-old.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the superseded lease's context is still live")
	}
	if !errors.Is(context.Cause(old.Context()), redislock.ErrLost) || old.Alive() {
		t.Fatalf("superseded lease: cause %v alive %v", context.Cause(old.Context()), old.Alive())
	}
	if err := old.Release(context.Background()); err != nil {
		t.Fatalf("releasing a lost lease: %v", err)
	}
	if !fresh.Alive() {
		t.Fatal("releasing the old lease touched the new one")
	}
	if _, err := try(t, s, redislock.Request{Key: "hello:prod", Host: "i-2", Cap: 1}); err == nil {
		t.Fatal("a second host was admitted past cap 1")
	}
}

func TestSmallestCapWins(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := client(t, r.Addr, "", nil)
	s := redislock.New(rdb, opts())
	req := func(host string, capReq int) redislock.Request {
		return redislock.Request{Key: "hello:prod", Host: host, Cap: capReq, SmallestCap: true}
	}
	// Host a sees 9 members (cap 3), host b only 3 of them (cap 1).
	a := mustAcquire(t, s, req("a", 3))
	if a.Cap() != 3 {
		t.Fatalf("a: cap %d, want 3", a.Cap())
	}
	_, err := try(t, s, req("b", 1))
	var busy *redislock.BusyError
	if !errors.As(err, &busy) || busy.Cap != 1 {
		t.Fatalf("b with cap 1 while a holds: %v, want busy at cap 1", err)
	}
	// Host c still sees cap 3, but b's smaller view is live: c must wait too.
	if _, err := try(t, s, req("c", 3)); !errors.As(err, &busy) || busy.Cap != 1 {
		t.Fatalf("c with cap 3 while b's view is 1: %v, want busy at cap 1", err)
	}
	// The semaphore writes its own keys only: recording the cap in force
	// is its caller's business (Lease.Cap).
	keys, _ := rdb.Keys(context.Background(), "*").Result()
	for _, k := range keys {
		if !strings.HasPrefix(k, "aptfleet:hello:prod:") || strings.Contains(k, "rollout") {
			t.Errorf("the semaphore wrote %s", k)
		}
	}
	// b stops asking (it left, or its view caught up elsewhere): once its view
	// lapses the cap is the smallest of the views still live.
	time.Sleep(opts().TTL + 50*time.Millisecond)
	c := mustAcquire(t, s, req("c", 3))
	if c.Cap() != 3 {
		t.Fatalf("c after b's view lapsed: cap %d, want 3", c.Cap())
	}
}

func TestHolderViewRefreshedAtRenewal(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	s := redislock.New(client(t, r.Addr, "", nil), opts())
	var capA, capB atomic.Int64
	capA.Store(1)
	capB.Store(1)
	ask := func(host string, c *atomic.Int64) func() redislock.Request {
		return func() redislock.Request {
			return redislock.Request{Key: "hello:prod", Host: host, Cap: int(c.Load()), SmallestCap: true}
		}
	}
	// Wait out the pause a fresh Redis starts with, so what follows is about the cap.
	primer := mustAcquire(t, s, redislock.Request{Key: "hello:prod", Host: "primer", Cap: 9})
	_ = primer.Release(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := s.Acquire(ctx, ask("a", &capA))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(context.Background())

	t.Run("a member joining raises the cap on the next attempt", func(t *testing.T) {
		got := make(chan puller.Lease, 1)
		go func() {
			l, _ := s.Acquire(ctx, ask("b", &capB))
			got <- l
		}()
		time.Sleep(300 * time.Millisecond)
		select {
		case <-got:
			t.Fatal("b admitted at cap 1 while a holds")
		default:
		}
		capA.Store(2) // both hosts now see enough members for cap 2
		capB.Store(2)
		b := <-got
		if b == nil {
			t.Fatal("b never admitted after the cap rose to 2")
		}
		defer b.Release(context.Background())
		if b.Cap() != 2 {
			t.Fatalf("b admitted at cap %d, want 2", b.Cap())
		}
	})

	t.Run("a holder whose view shrinks holds others back", func(t *testing.T) {
		capA.Store(1) // a now sees fewer members
		time.Sleep(2 * opts().RenewEvery)
		_, err := try(t, s, redislock.Request{Key: "hello:prod", Host: "c", Cap: 3, SmallestCap: true})
		var busy *redislock.BusyError
		if !errors.As(err, &busy) || busy.Cap != 1 {
			t.Fatalf("c asking for 3 while the holder's view is 1: %v, want busy at cap 1", err)
		}
	})
}

func TestAcquireRecomputesCapAndWakesOnRelease(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	s := redislock.New(client(t, r.Addr, "", nil), opts())
	holder := mustAcquire(t, s, redislock.Request{Key: "hello:prod", Host: "a", Cap: 1})

	t.Run("cap raised by membership", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		calls := 0
		l, err := s.Acquire(ctx, func() redislock.Request {
			calls++
			capNow := 1
			if calls >= 3 { // a member joined
				capNow = 2
			}
			return redislock.Request{Key: "hello:prod", Host: "b", Cap: capNow}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(context.Background())
		if calls < 3 || l.Cap() != 2 {
			t.Fatalf("admitted after %d calls with cap %d; want >= 3 calls, cap 2", calls, l.Cap())
		}
	})

	t.Run("release wakes a waiter", func(t *testing.T) {
		o := opts()
		o.PollEvery = time.Hour // only the release notification can wake it
		slow := redislock.New(client(t, r.Addr, "", nil), o)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go func() {
			time.Sleep(200 * time.Millisecond)
			_ = holder.Release(context.Background())
		}()
		l, err := slow.Acquire(ctx, func() redislock.Request { return redislock.Request{Key: "hello:prod", Host: "c", Cap: 1} })
		if err != nil {
			t.Fatalf("waiter not woken by the release: %v", err)
		}
		_ = l.Release(context.Background())
	})
}

// TestReleaseWakesOneWaiter: a release wakes the waiter queued first that is
// still waiting, and no other (no thundering herd).
func TestReleaseWakesOneWaiter(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := client(t, r.Addr, "", nil)
	o := opts()
	o.PollEvery = time.Hour // only a release can wake a waiter
	s := redislock.New(rdb, o)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const key = "hello:prod"
	holder := mustAcquire(t, s, redislock.Request{Key: key, Host: "a", Cap: 1, SmallestCap: true})

	type waiter struct {
		calls atomic.Int64
		got   chan puller.Lease
	}
	wait := func(ctx context.Context, host string) *waiter {
		w := &waiter{got: make(chan puller.Lease, 1)}
		go func() {
			l, _ := s.Acquire(ctx, func() redislock.Request {
				w.calls.Add(1)
				return redislock.Request{Key: key, Host: host, Cap: 1, SmallestCap: true}
			})
			w.got <- l
		}()
		for rdb.ZScore(ctx, "aptfleet:"+key+":waiters", host).Err() != nil {
			time.Sleep(5 * time.Millisecond)
		}
		return w
	}
	// A waiter that gave up stays queued; the release must pass it by.
	gctx, gcancel := context.WithCancel(ctx)
	gone := wait(gctx, "gone")
	gcancel()
	if l := <-gone.got; l != nil {
		t.Fatal("a cancelled Acquire returned a lease")
	}
	for {
		n, err := rdb.PubSubNumSub(ctx, "aptfleet:"+key+":wake:gone").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n["aptfleet:"+key+":wake:gone"] == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b := wait(ctx, "b")
	c := wait(ctx, "c")

	_ = holder.Release(ctx)
	lb := <-b.got
	if lb == nil {
		t.Fatal("b, queued first, was not woken by the release")
	}
	time.Sleep(100 * time.Millisecond)
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("c made %d attempts after one release woke b, want 1 (only b woken)", n)
	}
	_ = lb.Release(ctx)
	if lc := <-c.got; lc == nil {
		t.Fatal("c not woken by b's release")
	} else {
		_ = lc.Release(ctx)
	}
}

func TestDeadHolderExpires(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	dying := client(t, r.Addr, "", nil)
	s := redislock.New(client(t, r.Addr, "", nil), opts())
	req := redislock.Request{Key: "hello:prod", Host: "dead", Cap: 1}
	l := mustAcquire(t, redislock.New(dying, opts()), req)
	dying.Close() // the host dies without releasing

	select {
	case <-l.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("lease context not cancelled after renewals stopped working")
	}
	if !errors.Is(context.Cause(l.Context()), redislock.ErrExpired) || l.Alive() {
		t.Fatalf("cause %v alive %v, want ErrExpired, not alive", context.Cause(l.Context()), l.Alive())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next, err := s.Acquire(ctx, func() redislock.Request { return redislock.Request{Key: "hello:prod", Host: "next", Cap: 1} })
	if err != nil {
		t.Fatalf("slot of the dead host never freed: %v", err)
	}
	_ = next.Release(context.Background())
}

func TestRedisRestartPausesAdmissions(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	s := redislock.New(client(t, r.Addr, "", nil), opts())
	held := mustAcquire(t, s, redislock.Request{Key: "hello:prod", Host: "a", Cap: 1})
	r.Restart() // no persistence: the slot set is gone

	_, err := s.TryAcquire(context.Background(), redislock.Request{Key: "hello:prod", Host: "b", Cap: 1})
	var busy *redislock.BusyError
	if !errors.As(err, &busy) || busy.Paused <= 0 {
		t.Fatalf("first attempt after data loss: %v, want paused admissions", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next, err := s.Acquire(ctx, func() redislock.Request { return redislock.Request{Key: "hello:prod", Host: "b", Cap: 1} })
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release(context.Background())
	if held.Alive() {
		t.Fatal("the lease from before the restart is still alive while another host holds the only slot")
	}
}

// TestArmStartsThePauseEarly: arming a semaphore whose guard is missing
// starts the one-TTL pause then, so an acquisition after it is admitted at
// once; arming again changes nothing; after a data loss arming pauses
// admissions again, and a holder from before the loss is no longer alive by
// the time anyone is admitted.
func TestArmStartsThePauseEarly(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	o := opts()
	s := redislock.New(client(t, r.Addr, "", nil), o)
	ctx := context.Background()
	req := redislock.Request{Key: "hello:prod", Host: "a", Cap: 1}

	g, err := s.Arm(ctx, req.Key)
	pause := g.Pause
	if err != nil || pause <= 0 || pause > o.TTL {
		t.Fatalf("first Arm: pause %s, %v; want a pause of at most %s", pause, err, o.TTL)
	}
	if again, err := s.Arm(ctx, req.Key); err != nil || again.Pause > pause {
		t.Fatalf("second Arm: pause %s, %v; want the same pause running down (at most %s)", again.Pause, err, pause)
	}
	time.Sleep(pause + 10*time.Millisecond)
	if again, err := s.Arm(ctx, req.Key); err != nil || again.Pause != 0 {
		t.Fatalf("Arm after the pause: %s, %v; want no pause", again.Pause, err)
	}
	held, err := s.TryAcquire(ctx, req)
	if err != nil {
		t.Fatalf("first acquisition after an armed pause ran out: %v, want admitted at once", err)
	}

	r.Restart() // no persistence: the slot set and the guard are gone
	if g, err := s.Arm(ctx, req.Key); err != nil || g.Pause <= 0 {
		t.Fatalf("Arm after data loss: pause %s, %v; want a pause", g.Pause, err)
	}
	b := redislock.Request{Key: "hello:prod", Host: "b", Cap: 1}
	var busy *redislock.BusyError
	if _, err := s.TryAcquire(ctx, b); !errors.As(err, &busy) || busy.Paused <= 0 {
		t.Fatalf("acquisition right after the loss was armed: %v, want paused", err)
	}
	next := mustAcquire(t, s, b)
	if held.Alive() {
		t.Fatal("the lease from before the loss is still alive while another host holds the only slot")
	}
	_ = next
}

// TestArmEpoch: the epoch Arm reports stays the same through arming,
// admissions, renewals and releases, and changes whenever Redis lost the
// slot set or another Redis serves it: FLUSHALL, a restart without
// persistence, a restart from a snapshot that still holds the guard.
func TestArmEpoch(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	o := opts()
	rdb := client(t, r.Addr, "", nil)
	s := redislock.New(rdb, o)
	ctx := context.Background()
	const key = "hello:prod"
	epoch := func() string {
		t.Helper()
		g, err := s.Arm(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if g.Epoch == "" {
			t.Fatal("Arm reported an empty epoch")
		}
		return g.Epoch
	}
	seen := map[string]string{}
	first := epoch()
	seen[first] = "first use"
	if again := epoch(); again != first {
		t.Fatalf("epoch changed from %q to %q by arming again", first, again)
	}
	time.Sleep(o.TTL + 10*time.Millisecond)
	l := mustAcquire(t, s, redislock.Request{Key: key, Host: "a", Cap: 1})
	time.Sleep(o.RenewEvery * 2)
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if again := epoch(); again != first {
		t.Fatalf("epoch changed from %q to %q by an admission, renewals and a release", first, again)
	}
	changes := []struct {
		name string
		do   func()
	}{
		{"FLUSHALL", func() { rdb.FlushAll(ctx) }},
		{"a restart without persistence", r.Restart},
		{"a restart from a snapshot taken after the guard was set", func() {
			if err := rdb.Save(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			r.Restart()
		}},
	}
	for _, c := range changes {
		c.do()
		e := epoch()
		if prev, ok := seen[e]; ok {
			t.Fatalf("after %s the epoch is %q, the same as after %s", c.name, e, prev)
		}
		seen[e] = c.name
		if again := epoch(); again != e {
			t.Fatalf("after %s the epoch moved again from %q to %q with no further change", c.name, e, again)
		}
	}
}

func TestAuthAndTLS(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     testenv.RedisOptions
		password string
		wantErr  bool
	}{
		{"password", testenv.RedisOptions{Password: "s3cret"}, "s3cret", false},
		{"wrong password", testenv.RedisOptions{Password: "s3cret"}, "nope", true},
		{"tls", testenv.RedisOptions{TLS: true}, "", false},
		{"tls and password", testenv.RedisOptions{TLS: true, Password: "s3cret"}, "s3cret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.StartRedis(t, tc.opts)
			o := opts()
			o.Prefix = "custom:"
			rdb := client(t, r.Addr, tc.password, r.TLSConfig)
			s := redislock.New(rdb, o)
			l, err := try(t, s, redislock.Request{Key: "hello:prod", Host: "a", Cap: 1})
			if tc.wantErr {
				if err == nil {
					t.Fatal("acquired with a wrong password")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release(context.Background())
			if n, err := rdb.Exists(context.Background(), "custom:hello:prod:slots").Result(); err != nil || n != 1 {
				t.Fatalf("custom prefix: slots key exists = %d, %v", n, err)
			}
		})
	}
}
