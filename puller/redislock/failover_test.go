package redislock_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller/redislock"
)

// failoverStats is what one failover trial saw.
type failoverStats struct {
	acquisitions, after int64 // leases granted, and granted after the switch
	stepCounter
	unknown int  // hosts holding, at the switch, a lease granted after the cut (unknown to the new server)
	paused  bool // a probe right after the switch found admissions paused
	lag     time.Duration
}

// TestCapHoldsThroughFailover runs randomized trials in which Redis comes back
// with part of its past, the two ways a managed Redis does:
//   - "snapshot": the server is killed and restarted from an RDB snapshot
//     taken a random 1.5-2.5 s earlier (Redis's default persistence);
//   - "replica": a replica set up with REPLICAOF (through a relay) is paused:
//     the relay holds the replication stream so the replica falls 1.5-2.5 s
//     behind; the primary is killed, the replica is promoted with REPLICAOF
//     NO ONE, and every host's connection moves to it (an ElastiCache
//     failover moving the primary endpoint to an async replica).
//
// Eight hosts, a 2 s lease, caps 1 and 2. Every host repeatedly takes a slot
// and runs a deploy of a few short destructive steps, each after an Alive
// check; every step is tracked while it runs, across all hosts, with the cap
// its host was admitted under, and more steps at once than that cap is a
// violation. Holders admitted after the snapshot (or the replica's last
// update) are unknown to the new server; unless admissions pause until their
// leases have run out, the new server hands their slots to others while they
// are still stepping.
//
// A plain test run makes two trials (snapshot at cap 1, replica at cap 2);
// APTFLEET_LOCK_TRIALS=N makes N trials of each case at each cap (make
// trials-lock runs 3, 12 trials).
func TestCapHoldsThroughFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover trials take about 15 s each")
	}
	n, all := 1, false
	if s := os.Getenv("APTFLEET_LOCK_TRIALS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("APTFLEET_LOCK_TRIALS=%q: want a positive number", s)
		}
		all = true
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var trials, steps, over, unknown, acqs int64
	for _, kind := range []string{"snapshot", "replica"} {
		for _, capN := range []int{1, 2} {
			if !all && (kind == "snapshot") != (capN == 1) {
				continue // a plain test run: snapshot at cap 1, replica at cap 2
			}
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("%s cap %d #%d", kind, capN, i+1)
				t.Run(name, func(t *testing.T) {
					st := runFailoverTrial(t, kind, capN, seed+uint64(trials)*7919)
					t.Logf("lag %s: %d acquisitions (%d after the switch), %d steps (max %d at once, %d over the cap, %d refused), %d holders unknown to the new server, paused after the switch: %v",
						st.lag.Round(time.Millisecond), st.acquisitions, st.after, st.steps, st.maxInStep, st.stepsOverCap, st.stepsRefused, st.unknown, st.paused)
					trials++
					steps += st.steps
					over += st.stepsOverCap
					unknown += int64(st.unknown)
					acqs += st.acquisitions
					if st.stepsOverCap > 0 {
						t.Errorf("%d steps started with more steps running than the cap %d allows (max %d at once)", st.stepsOverCap, capN, st.maxInStep)
					}
					if !st.paused {
						t.Errorf("admissions were not paused right after Redis came back with part of its past")
					}
					// The trial must have exercised what it claims: holders the
					// new server did not know, and a fleet that went on.
					if st.unknown == 0 || st.after == 0 {
						t.Errorf("trial too tame: %d holders unknown to the new server at the switch, %d acquisitions after it", st.unknown, st.after)
					}
				})
			}
		}
	}
	t.Logf("TOTAL: %d failover trials, %d acquisitions, %d steps, %d over the cap, %d holders unknown to the new server at the switch", trials, acqs, steps, over, unknown)
}

func runFailoverTrial(t *testing.T, kind string, capN int, seed uint64) *failoverStats {
	const hosts = 8
	rng := rand.New(rand.NewPCG(seed, 1))
	st := &failoverStats{lag: 1500*time.Millisecond + time.Duration(rng.IntN(1000))*time.Millisecond}
	o := redislock.Options{TTL: 2 * time.Second, PollEvery: 50 * time.Millisecond, Logger: quiet}
	key := "failover:" + strings.ReplaceAll(t.Name(), "/", "-")
	key = strings.ReplaceAll(key, " ", "-")

	primary := testenv.StartRedis(t, testenv.RedisOptions{})
	var replica *testenv.Redis
	var link *proxy // the replication stream
	if kind == "replica" {
		replica = testenv.StartRedis(t, testenv.RedisOptions{})
		link = newProxy(t, primary.Addr)
		host, port, _ := net.SplitHostPort(link.Addr())
		rc := client(t, replica.Addr, "", nil)
		if err := rc.ReplicaOf(context.Background(), host, port).Err(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(rc.Info(context.Background(), "replication").Val(), "master_link_status:up") {
			if time.Now().After(deadline) {
				t.Fatal("replica never synced with the primary")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Wait out the pause a fresh slot set starts with.
	first := redislock.New(client(t, primary.Addr, "", nil), o)
	l, err := try(t, first, redislock.Request{Key: key, Host: "first", Cap: capN})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Release(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var switched atomic.Bool
	var holdMu sync.Mutex
	holding := map[string]time.Time{} // host -> when it was granted the lease it holds
	step := func(rng *rand.Rand, l *redislock.Lease) bool {
		return st.step(l, time.Duration(20+rng.IntN(130))*time.Millisecond)
	}

	proxies := make([]*proxy, hosts)
	for h := range proxies {
		proxies[h] = newProxy(t, primary.Addr)
	}
	var wg sync.WaitGroup
	for h := 0; h < hosts; h++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(h)+2))
			host := fmt.Sprintf("i-%02d", h)
			sem := redislock.New(client(t, proxies[h].Addr(), "", nil), o)
			for ctx.Err() == nil {
				lease, err := sem.Acquire(ctx, func() redislock.Request { return redislock.Request{Key: key, Host: host, Cap: capN} })
				if err != nil {
					continue // ctx done
				}
				l := lease.(*redislock.Lease)
				holdMu.Lock()
				holding[host] = time.Now()
				holdMu.Unlock()
				atomic.AddInt64(&st.acquisitions, 1)
				if switched.Load() {
					atomic.AddInt64(&st.after, 1)
				}
				// A deploy: a few destructive steps (drain, install, restart,
				// health check), each shorter than the lease's safety margin
				// (a tenth of it), with short waits between them.
				for i := 0; i < 3+rng.IntN(4); i++ {
					if !step(rng, l) {
						break
					}
					sleepCtx(ctx, time.Duration(10+rng.IntN(90))*time.Millisecond)
				}
				holdMu.Lock()
				delete(holding, host)
				holdMu.Unlock()
				_ = l.Release(context.Background())
				sleepCtx(ctx, time.Duration(rng.IntN(200))*time.Millisecond)
			}
		}()
	}

	// The switch, once the fleet has run a while.
	sleepCtx(ctx, 1500*time.Millisecond+time.Duration(rng.IntN(1500))*time.Millisecond)
	admin := client(t, primary.Addr, "", nil)
	// lagged waits out the lag, then until a host holds a lease granted
	// after the cut, one the new server cannot know.
	lagged := func(cut time.Time) {
		defer func() {
			holdMu.Lock()
			for _, at := range holding {
				if at.After(cut) {
					st.unknown++
				}
			}
			holdMu.Unlock()
		}()
		sleepCtx(ctx, st.lag)
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			holdMu.Lock()
			n := 0
			for _, at := range holding {
				if at.After(cut) {
					n++
				}
			}
			holdMu.Unlock()
			if n > 0 {
				return
			}
		}
	}
	switch kind {
	case "snapshot":
		if err := admin.Save(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		lagged(time.Now())
		primary.Restart()
	case "replica":
		link.Freeze()
		lagged(time.Now())
		primary.Kill()
		link.close() // what it held never reaches the replica
		if err := client(t, replica.Addr, "", nil).ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
			t.Fatal(err)
		}
		for _, p := range proxies {
			p.Retarget(replica.Addr)
		}
	}
	switched.Store(true)
	now := primary.Addr
	if replica != nil {
		now = replica.Addr
	}
	nowClient := client(t, now, "", nil)
	probe, err := redislock.New(nowClient, o).TryAcquire(ctx, redislock.Request{Key: key, Host: "probe", Cap: capN})
	var busy *redislock.BusyError
	st.paused = errors.As(err, &busy) && busy.Paused > 0
	if err == nil {
		_ = probe.Release(ctx)
	}

	// Run on for three leases: the pause, then admissions again.
	sleepCtx(ctx, 3*o.TTL)
	cancel()
	wg.Wait()
	return st
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
