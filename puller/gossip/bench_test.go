package gossip

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// BenchmarkDeployReaction starts N real Serf members on loopback, then
// repeatedly Announces a deploy through one of them and measures the time from
// the Announce call until every member has received the event.
//
// The dissemination timers are the production LAN ones (gossip every 200ms to
// 3 members, retransmit multiplier 4). Only failure detection is relaxed
// (benchTiming): here all N members share one process on a shared 2-core
// machine, and a starved process misses 500ms probe deadlines that separate
// hosts would meet, marking live members failed. Failure detection does not
// take part in spreading a user event.
//
//	go test -run '^$' -bench DeployReaction -benchtime 20x ./puller/gossip
//
// Reported per round: all-s (until the last member got it; p50 and max over the
// rounds) and member-p50-s (the median member's delay, p50 over the rounds).
func BenchmarkDeployReaction(b *testing.B) {
	for _, n := range []int{30, 100} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			members := startCluster(b, n)
			if la, err := os.ReadFile("/proc/loadavg"); err == nil {
				b.Logf("N=%d: load average before the rounds: %s", n, strings.TrimSpace(string(la)))
			}
			var all, medians []time.Duration
			b.ResetTimer()
			for round := 0; round < b.N; round++ {
				got := make([]time.Duration, n)
				var wg sync.WaitGroup
				t0 := time.Now()
				for i, m := range members {
					wg.Add(1)
					go func() {
						defer wg.Done()
						select {
						case <-m.Deploys():
							got[i] = time.Since(t0)
						case <-time.After(30 * time.Second):
							got[i] = -1
						}
					}()
				}
				announced := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					announced <- Announce(ctx, []string{members[round%n].Addr()}, nil, "hello", "prod")
				}()
				wg.Wait()
				if err := <-announced; err != nil {
					b.Fatal(err)
				}
				if slices.Contains(got, -1) {
					b.Fatalf("round %d: some member never received the deploy event", round)
				}
				slices.Sort(got)
				all = append(all, got[n-1])
				medians = append(medians, got[n/2])
			}
			b.StopTimer()
			b.Logf("N=%d: per round, until every member had it: %v", n, roundTo(all, time.Millisecond))
			slices.Sort(all)
			slices.Sort(medians)
			b.ReportMetric(all[len(all)/2].Seconds(), "all-p50-s")
			b.ReportMetric(all[len(all)-1].Seconds(), "all-max-s")
			b.ReportMetric(medians[len(medians)/2].Seconds(), "member-p50-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// startCluster starts n members with the LAN timers, all joined through the
// first (eight joining at a time), and waits until every one of them sees all
// n alive.
// settle is how long the cluster rests after converging, before the rounds.
const settle = 15 * time.Second

// benchTiming keeps the LAN gossip timers and relaxes failure detection.
var benchTiming = Timing{ProbeInterval: 5 * time.Second, ProbeTimeout: 3 * time.Second, SuspicionMult: 8}

func startCluster(b *testing.B, n int) []*Member {
	b.Helper()
	members := make([]*Member, n)
	members[0] = start(b, "i-bench-000", "hello", "prod", nil, nil, benchTiming)
	join := []string{members[0].Addr()}
	var g errgroup.Group
	g.SetLimit(8)
	for i := 1; i < n; i++ {
		g.Go(func() error {
			m, err := newMember(fmt.Sprintf("i-bench-%03d", i), "hello", "prod", join, nil, benchTiming)
			members[i] = m
			return err
		})
	}
	err := g.Wait()
	b.Cleanup(func() {
		for _, m := range members[1:] {
			if m != nil {
				_ = m.shutdown()
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, m := range members {
		for m.Alive("hello", "prod") != n {
			if time.Now().After(deadline) {
				b.Fatalf("cluster of %d did not converge within 60s: %s", n, membership(members))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Let the burst of alive messages from n members joining at once drain
	// (every member re-gossips each member it learns); a fleet at rest has none.
	time.Sleep(settle)
	return members
}

// membership summarises what the members see: how many see k alive, and the
// statuses of the members in their views.
func membership(members []*Member) string {
	alive := map[int]int{}
	status := map[string]int{}
	for _, m := range members {
		alive[m.Alive("hello", "prod")]++
		for _, mm := range m.serf.Members() {
			status[mm.Status.String()]++
		}
	}
	return fmt.Sprintf("alive counts %v, statuses %v", alive, status)
}

func roundTo(ds []time.Duration, m time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(m)
	}
	return out
}
