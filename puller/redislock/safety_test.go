package redislock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller/redislock"
)

// observeScript is the observer's own view of the holder set: the members whose
// lease has not expired by Redis time. It is independent of the package's code.
var observeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`)

type trial struct {
	name         string
	cap          int // the cap hosts ask for
	spread       int // hosts ask for caps in [cap, cap+spread]: their Serf views differ
	hosts        int
	acquisitions int
	restart      bool // kill and restart redis-server (losing its data) halfway
}

// trialStats is what one trial saw.
type trialStats struct {
	acquisitions, samples, sampleErrors, overCap int64
	maxHolders                                   int64
	stepCounter
	kills, stalls, expired, lost, restarts           int64
	stalledAlive, stalledCtxLive, pausedAfterRestart int64
}

// TestLockSafetyTrials runs randomized trials against a real redis-server:
// many hosts, each with its own connection through a relay that can stall it,
// acquire, run short "destructive steps" (each after an Alive check), and
// release; some are killed without releasing, some stall past their lease, and
// redis-server is killed and restarted without its data mid-trial. Two
// independent checks run throughout:
//   - an observer samples the holder set by Redis time and counts every moment
//     with more holders than the cap (the largest cap any host asks for);
//   - every destructive step is tracked while it runs, across all hosts, with
//     the cap its host was admitted under: more steps at once than the largest
//     of those caps is a violation, whatever Redis shows. (The last host
//     admitted among those in a step was admitted while all the others held,
//     so with a correct semaphore their number never exceeds its cap.)
//
// When views differ, the smallest live view wins, so the cap in force moves
// between cap and cap+spread; the checks hold for any such history.
func TestLockSafetyTrials(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	trials := []trial{
		{name: "cap 1", cap: 1, hosts: 8, acquisitions: 200},
		{name: "cap 2 redis restart", cap: 2, hosts: 12, acquisitions: 250, restart: true},
		{name: "cap 3 views differ", cap: 3, hosts: 16, spread: 3, acquisitions: 300},
		{name: "cap 4 views differ redis restart", cap: 4, hosts: 24, spread: 2, acquisitions: 350, restart: true},
	}
	var total trialStats
	for i, tr := range trials {
		t.Run(tr.name, func(t *testing.T) {
			st := runTrial(t, r, tr, seed+uint64(i)*1000)
			t.Logf("%d acquisitions, %d samples (max %d holders, caps asked %d-%d), %d steps (max %d at once, %d refused), %d kills, %d stalls, %d expired, %d lost, %d restarts",
				st.acquisitions, st.samples, st.maxHolders, tr.cap, tr.cap+tr.spread, st.steps, st.maxInStep, st.stepsRefused, st.kills, st.stalls, st.expired, st.lost, st.restarts)
			switch {
			case st.overCap > 0:
				t.Errorf("observer: %d of %d samples had more holders than the cap %d", st.overCap, st.samples, tr.cap+tr.spread)
			case st.stepsOverCap > 0:
				t.Errorf("%d destructive steps started with more steps running than any of their hosts' caps allow", st.stepsOverCap)
			case st.stalledAlive > 0 || st.stalledCtxLive > 0:
				t.Errorf("after stalling past their lease, %d holders were still Alive and %d had a live Context", st.stalledAlive, st.stalledCtxLive)
			}
			// The trial must really have exercised what it claims.
			if st.maxHolders < int64(tr.cap) {
				t.Errorf("the holder set never reached the cap (max %d, cap %d): the trial did not saturate", st.maxHolders, tr.cap)
			}
			if st.kills == 0 || st.stalls == 0 || st.expired == 0 || st.samples < 100 {
				t.Errorf("trial too tame: %d kills, %d stalls, %d expired leases, %d samples", st.kills, st.stalls, st.expired, st.samples)
			}
			if tr.restart && (st.restarts != 1 || st.pausedAfterRestart != 1) {
				t.Errorf("restart: %d restarts, admissions paused after %d; want 1 and 1", st.restarts, st.pausedAfterRestart)
			}
			for _, p := range []struct{ dst, src *int64 }{
				{&total.acquisitions, &st.acquisitions}, {&total.samples, &st.samples}, {&total.overCap, &st.overCap},
				{&total.steps, &st.steps}, {&total.stepsOverCap, &st.stepsOverCap}, {&total.kills, &st.kills},
				{&total.stalls, &st.stalls}, {&total.expired, &st.expired}, {&total.lost, &st.lost}, {&total.restarts, &st.restarts},
			} {
				*p.dst += *p.src
			}
		})
	}
	t.Logf("TOTAL: %d trials, %d acquisitions, %d observer samples, %d above the cap; %d steps, %d over the cap; %d holders killed, %d stalled past their lease, %d leases expired, %d lost, %d redis restarts",
		len(trials), total.acquisitions, total.samples, total.overCap, total.steps, total.stepsOverCap, total.kills, total.stalls, total.expired, total.lost, total.restarts)
	if total.acquisitions < 1000 {
		t.Errorf("only %d acquisitions across the trials, want >= 1000", total.acquisitions)
	}
}

func runTrial(t *testing.T, r *testenv.Redis, tr trial, seed uint64) *trialStats {
	var st trialStats
	key := "trial:" + strings.ReplaceAll(tr.name, " ", "-")
	o := opts()
	reports := &countingHandler{}
	o.Logger = slog.New(reports)
	defer func() { st.lost += reports.count("released a lease that was already lost") }()

	// Wait out the pause a fresh slot set starts with.
	first := redislock.New(client(t, r.Addr, "", nil), o)
	l, err := try(t, first, redislock.Request{Key: key, Host: "first", Cap: tr.cap, SmallestCap: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Release(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup

	// Observer.
	obs := client(t, r.Addr, "", nil)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			n, err := observeScript.Run(ctx, obs, []string{"aptfleet:" + key + ":slots"}).Int64()
			if err != nil {
				atomic.AddInt64(&st.sampleErrors, 1)
				time.Sleep(5 * time.Millisecond)
				continue
			}
			atomic.AddInt64(&st.samples, 1)
			if n > int64(tr.cap+tr.spread) {
				atomic.AddInt64(&st.overCap, 1)
			}
			maxInto(&st.maxHolders, n)
			time.Sleep(500 * time.Microsecond)
		}
	}()

	// Redis restart halfway.
	if tr.restart {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && atomic.LoadInt64(&st.acquisitions) < int64(tr.acquisitions/2) {
				time.Sleep(5 * time.Millisecond)
			}
			if ctx.Err() == nil {
				r.Restart()
				atomic.AddInt64(&st.restarts, 1)
				// The slot set is gone: admissions must pause for one TTL.
				_, err := first.TryAcquire(ctx, redislock.Request{Key: key, Host: "probe", Cap: tr.cap, SmallestCap: true})
				var busy *redislock.BusyError
				if errors.As(err, &busy) && busy.Paused > 0 {
					atomic.AddInt64(&st.pausedAfterRestart, 1)
				}
			}
		}()
	}

	step := func(rng *rand.Rand, l *redislock.Lease) bool {
		return st.step(l, time.Duration(1+rng.IntN(6))*time.Millisecond)
	}
	// ended records how a lease that was not released ended.
	ended := func(l *redislock.Lease) {
		select {
		case <-l.Context().Done():
		case <-time.After(5 * time.Second):
			return
		}
		switch cause := context.Cause(l.Context()); {
		case errors.Is(cause, redislock.ErrExpired):
			atomic.AddInt64(&st.expired, 1)
		case errors.Is(cause, redislock.ErrLost):
			atomic.AddInt64(&st.lost, 1)
		}
	}

	for h := 0; h < tr.hosts; h++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(h)))
			host := fmt.Sprintf("i-%02d", h)
			px := newProxy(t, r.Addr)
			rdb := client(t, px.Addr(), "", nil)
			sem := redislock.New(rdb, o)
			for ctx.Err() == nil && atomic.LoadInt64(&st.acquisitions) < int64(tr.acquisitions) {
				capReq := tr.cap + rng.IntN(tr.spread+1)
				lease, err := sem.Acquire(ctx, func() redislock.Request {
					return redislock.Request{Key: key, Host: host, Cap: capReq, SmallestCap: true}
				})
				if err != nil {
					continue // ctx done
				}
				l := lease.(*redislock.Lease)
				if atomic.AddInt64(&st.acquisitions, 1) >= int64(tr.acquisitions) {
					cancel()
				}
				switch fate := rng.IntN(100); {
				case fate < 8: // killed after a step, never releasing
					step(rng, l)
					rdb.Close()
					atomic.AddInt64(&st.kills, 1)
					ended(l)
					rdb = client(t, px.Addr(), "", nil) // the host comes back
					sem = redislock.New(rdb, o)
				case fate < 13: // stalled past its lease, then tries its step
					px.Freeze()
					time.Sleep(o.TTL + time.Duration(rng.IntN(int(o.TTL/time.Millisecond)))*time.Millisecond + o.TTL/5)
					if l.Alive() {
						atomic.AddInt64(&st.stalledAlive, 1)
					}
					if l.Context().Err() == nil {
						atomic.AddInt64(&st.stalledCtxLive, 1)
					}
					step(rng, l) // must be refused
					px.Thaw()
					atomic.AddInt64(&st.stalls, 1)
					ended(l)
					_ = l.Release(context.Background())
				default: // a deploy of a few steps, then release
					for i := 0; i < 1+rng.IntN(3); i++ {
						if !step(rng, l) {
							ended(l)
							break
						}
					}
					_ = l.Release(context.Background())
				}
			}
		}()
	}
	wg.Wait()
	return &st
}

// countingHandler counts log messages: how the semaphore reports a release of
// a lease that was lost (after the restart, for example).
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[string]int64{}
	}
	h.msgs[r.Message]++
	return nil
}

func (h *countingHandler) count(substr string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for m, c := range h.msgs {
		if strings.Contains(m, substr) {
			n += c
		}
	}
	return n
}

// stepCounter counts the destructive steps hosts take under their leases: a
// step runs only while its lease is alive (else it is refused), and one that
// starts while more hosts are in a step than the largest cap among them
// allows is over the cap.
type stepCounter struct {
	steps, stepsOverCap, stepsRefused, maxInStep int64

	mu     sync.Mutex
	inStep map[string]int // host -> the cap it was admitted under
}

// step takes one step of d under l, reporting whether it ran.
func (c *stepCounter) step(l *redislock.Lease, d time.Duration) bool {
	if !l.Alive() {
		atomic.AddInt64(&c.stepsRefused, 1)
		return false
	}
	c.mu.Lock()
	if c.inStep == nil {
		c.inStep = map[string]int{}
	}
	c.inStep[l.Host()] = l.Cap()
	maxCap := 0
	for _, n := range c.inStep {
		maxCap = max(maxCap, n)
	}
	if len(c.inStep) > maxCap {
		atomic.AddInt64(&c.stepsOverCap, 1)
	}
	maxInto(&c.maxInStep, int64(len(c.inStep)))
	c.mu.Unlock()
	atomic.AddInt64(&c.steps, 1)
	time.Sleep(d)
	c.mu.Lock()
	delete(c.inStep, l.Host())
	c.mu.Unlock()
	return true
}

func maxInto(dst *int64, v int64) {
	for {
		old := atomic.LoadInt64(dst)
		if v <= old || atomic.CompareAndSwapInt64(dst, old, v) {
			return
		}
	}
}

// TestStalledProcessDoesNotStartItsStep stops a real holder process (SIGSTOP)
// past its lease, lets another host take the only slot, resumes it (SIGCONT)
// and asks it to start its destructive step: it must refuse.
func TestStalledProcessDoesNotStartItsStep(t *testing.T) {
	if os.Getenv("REDISLOCK_HOLDER_ADDR") != "" {
		t.Skip("helper process")
	}
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHolderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REDISLOCK_HOLDER_ADDR="+r.Addr)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	expect := func(prefix string) string {
		t.Helper()
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), prefix) {
				return lines.Text()
			}
		}
		t.Fatalf("holder process ended without printing %q", prefix)
		return ""
	}
	expect("acquired")

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s := redislock.New(client(t, r.Addr, "", nil), opts())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other, err := s.Acquire(ctx, func() redislock.Request { return redislock.Request{Key: "stall:prod", Host: "other", Cap: 1} })
	if err != nil {
		t.Fatalf("the stalled holder's slot never freed: %v", err)
	}
	defer other.Release(context.Background())
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "go")
	if got := expect("step") + expect("ctx"); !strings.Contains(got, "step refused") || !strings.Contains(got, "ctx done") {
		t.Fatalf("resumed holder: %q; want its step refused and its context done", got)
	}
	if !other.Alive() {
		t.Fatal("the new holder lost its lease")
	}
}

// TestHolderProcess is the holder run by TestStalledProcessDoesNotStartItsStep.
func TestHolderProcess(t *testing.T) {
	addr := os.Getenv("REDISLOCK_HOLDER_ADDR")
	if addr == "" {
		t.Skip("run by TestStalledProcessDoesNotStartItsStep")
	}
	s := redislock.New(client(t, addr, "", nil), opts())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := s.Acquire(ctx, func() redislock.Request { return redislock.Request{Key: "stall:prod", Host: "stalled", Cap: 1} })
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("acquired")
	bufio.NewScanner(os.Stdin).Scan() // stopped and resumed in here
	if l.Alive() {
		fmt.Println("step started")
	} else {
		fmt.Println("step refused")
	}
	select {
	case <-l.Context().Done():
		fmt.Println("ctx done:", context.Cause(l.Context()))
	case <-time.After(time.Second):
		fmt.Println("ctx live")
	}
}
