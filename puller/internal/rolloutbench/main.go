// Command rolloutbench measures a rolling deploy: N in-process agents
// against a real redis-server (the real redislock semaphore and redisstate),
// fraction 1/3, an install that takes a fixed time d, and prints a table of
// the wall time T against ceil(1/fraction) x d and of the peak number of
// concurrent holders against the cap. With -canary every rollout starts with
// a canary stage of one host and bake 0 (the others wait for it, woken by
// Pub/Sub), and T is set against (waves + 1) x d. With -idle it also measures the real
// `puller run` binary on an idle tick (requests per tick, apt-get runs, RSS).
//
// Membership is a fixed count (every agent sees all N alive): 300 Serf
// members in one process would measure Serf, not the rollout; the gossip
// package has its own benchmark.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/redislock"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

var (
	showWaves = flag.Bool("waves", false, "print when each wave's installs started and Redis's command statistics (to stderr)")
	canary    = flag.Bool("canary", false, "each rollout starts with a canary stage of 1 host and bake 0")
)

func main() {
	ns := flag.String("n", "10,100,300", "agent counts")
	d := flag.Duration("d", 2*time.Second, "install time")
	idle := flag.Bool("idle", false, "also measure the real puller binary on idle ticks (needs -puller)")
	bin := flag.String("puller", "bin/puller", "puller binary for -idle")
	ticks := flag.Int("ticks", 10, "idle ticks to observe")
	flag.Parse()
	ctx := context.Background()
	if err := runRollouts(ctx, *ns, *d, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rolloutbench: "+err.Error())
		os.Exit(1)
	}
	if *idle {
		if err := runIdle(ctx, *bin, *ticks, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "rolloutbench: idle: "+err.Error())
			os.Exit(1)
		}
	}
}

// redisServer starts a redis-server on a free loopback port in dir.
func redisServer(dir string) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
		"--appendonly", "no", "--dir", dir, "--maxclients", "4096")
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for i := 0; i < 200; i++ {
		if rdb.Ping(context.Background()).Err() == nil {
			return addr, stop, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("redis-server on %s did not answer", addr)
}

// index is the dist every agent reads: a new version makes its ETag change.
// Shared in memory, so the figure is about the rollout, not about S3.
type index struct {
	mu       sync.Mutex
	etag     string
	versions []string
}

func (x *index) Check(ctx context.Context, dist, etag string) (bool, string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.etag != etag, x.etag, nil
}

func (x *index) Versions(ctx context.Context, dist, pkg string) (puller.Listing, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return puller.Listing{Versions: append([]string(nil), x.versions...)}, nil
}

// host records installs; an install takes d. Only the apt and systemctl
// steps are replaced.
type host struct {
	version string
	d       time.Duration
	active  *atomic.Int64
	peak    *atomic.Int64
	done    chan<- time.Time
}

func (h *host) Installed(ctx context.Context, pkg string) (string, error) { return h.version, nil }

var (
	startsMu sync.Mutex
	starts   []time.Time
)

func (h *host) Install(ctx context.Context, pkg, version string) error {
	startsMu.Lock()
	starts = append(starts, time.Now())
	startsMu.Unlock()
	n := h.active.Add(1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(h.d)
	h.active.Add(-1)
	h.version = version
	return nil
}

func (h *host) Restart(ctx context.Context, app string) error { return nil }

func (h *host) Check(ctx context.Context) error {
	h.done <- time.Now()
	return nil
}

type fixed int

func (f fixed) Alive(app, env string) int { return int(f) }

type row struct {
	n, capN, waves        int
	d, t, stage           time.Duration // stage: the canary stage (to its first healthy canary)
	ratio, overhead       float64
	peakHolders, peakInst int64
	samples               int64
	redisCalls            int64
	redisBusy             time.Duration
}

func runRollouts(ctx context.Context, list string, d time.Duration, w io.Writer) error {
	dir, err := os.MkdirTemp("", "rolloutbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addr, stop, err := redisServer(dir)
	if err != nil {
		return err
	}
	defer stop()
	const fraction = 1.0 / 3
	var rows []row
	for i, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-n: %q is not a count", s)
		}
		r, err := rollout(ctx, addr, fmt.Sprintf("bench%d", i), n, fraction, d)
		if err != nil {
			return fmt.Errorf("N=%d: %w", n, err)
		}
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "N=%d done in %s\n", n, r.t.Round(time.Millisecond))
	}
	mode := ""
	if *canary {
		mode = ", canary stage of 1 host, bake 0"
	}
	fmt.Fprintf(w, "Rollout wall time: fraction 1/3, install time d = %s%s, real redis-server, in-process agents\n", d, mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if *canary {
		fmt.Fprintln(tw, "N\tcap\twaves=ceil(N/cap)\tT\tcanary stage\tT/((waves+1)*d)\tpeak holders\tpeak installing\tholder samples\tredis commands\tredis busy\t")
	} else {
		fmt.Fprintln(tw, "N\tcap\twaves=ceil(N/cap)\tT\tT/(ceil(1/f)*d)\tT/(waves*d)\tpeak holders\tpeak installing\tholder samples\tredis commands\tredis busy\t")
	}
	for _, r := range rows {
		if *canary {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%.3f\t%d\t%d\t%d\t%d\t%s\t\n", r.n, r.capN, r.waves, r.t.Round(time.Millisecond),
				r.stage.Round(time.Millisecond), r.overhead, r.peakHolders, r.peakInst, r.samples, r.redisCalls, r.redisBusy.Round(time.Millisecond))
			continue
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t%s\t\n", r.n, r.capN, r.waves, r.t.Round(time.Millisecond),
			r.ratio, r.overhead, r.peakHolders, r.peakInst, r.samples, r.redisCalls, r.redisBusy.Round(time.Millisecond))
	}
	return tw.Flush()
}

func rollout(ctx context.Context, addr, app string, n int, fraction float64, d time.Duration) (row, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	defer rdb.Close()
	quiet := slog.New(slog.DiscardHandler)
	cfg := puller.DefaultConfig()
	cfg.Apps = []puller.App{{Name: app, Env: "bench", Dist: "bench", Repo: "s3://bench-bucket/repo", Health: puller.Health{Consecutive: 1},
		Drain: puller.Drain{Strategy: "none"}, Canary: puller.Canary{Promote: puller.PromoteAuto}}}
	if *canary {
		cfg.Apps[0].Canary.Hosts = 1
	}
	cfg.Fraction = fraction
	cfg.LockTTL = 5 * time.Second
	cfg.LockPoll = time.Second
	sem := redislock.New(rdb, redislock.Options{TTL: cfg.LockTTL, PollEvery: cfg.LockPoll, Logger: quiet})
	// The first use of a semaphore pauses admissions for one TTL (its slot
	// set could have been lost); take that pause before the clock starts.
	key := app + ":bench"
	for {
		l, err := sem.TryAcquire(ctx, redislock.Request{Key: key, Host: "warmup", Cap: 1})
		if err == nil {
			l.Release(ctx)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	idx := &index{etag: `"1"`, versions: []string{"1.0-1"}}
	var active, peak atomic.Int64
	done := make(chan time.Time, n)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var agents []*puller.Agent
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		h := &host{version: "1.0-1", d: d, active: &active, peak: &peak, done: done}
		// Each agent has its own Redis connections, as each host would.
		own := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 2})
		defer own.Close()
		st := redisstate.New(own, redisstate.Options{})
		a, err := puller.New(cfg, fmt.Sprintf("i-%04d", i), puller.Deps{
			Apps:     []puller.AppDeps{{Index: idx, Installer: h, Restarter: h, Checker: h}},
			Lock:     redislock.New(own, redislock.Options{TTL: cfg.LockTTL, PollEvery: cfg.LockPoll, Logger: quiet}),
			State:    st,
			Canaries: st,
			Members:  fixed(n), Compare: debian.CompareVersions, Logger: quiet,
		})
		if err != nil {
			return row{}, err
		}
		if err := a.Once(ctx); err != nil { // learn the installed version and the ETag
			return row{}, err
		}
		agents = append(agents, a)
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(runCtx) }()
	}
	// Sample the holder set by Redis time while the rollout runs.
	var peakHolders, samples atomic.Int64
	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sw sync.WaitGroup
	sw.Add(1)
	go func() {
		defer sw.Done()
		for sampling.Err() == nil {
			hs, err := sem.Holders(sampling, key)
			if err == nil {
				samples.Add(1)
				if int64(len(hs)) > peakHolders.Load() {
					peakHolders.Store(int64(len(hs)))
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		return row{}, err
	}
	idx.mu.Lock()
	idx.etag, idx.versions = `"2"`, []string{"1.0-1", "1.1-1"}
	idx.mu.Unlock()
	start := time.Now()
	for _, a := range agents {
		a.Notify(app, "bench")
	}
	var first, last time.Time
	timeout := time.After(time.Duration(n)*d + time.Minute)
	for i := 0; i < n; i++ {
		select {
		case t := <-done:
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		case <-timeout:
			return row{}, fmt.Errorf("only %d of %d hosts finished", i, n)
		}
	}
	t := last.Sub(start)
	calls, busy := redisLoad(ctx, rdb)
	if *showWaves {
		info, _ := rdb.Info(ctx, "commandstats").Result()
		fmt.Fprint(os.Stderr, info)
	}
	if *showWaves {
		startsMu.Lock()
		sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
		capN := max(1, int(math.Floor(fraction*float64(n)+1e-9)))
		for i := 0; i < len(starts); i += capN {
			end := min(i+capN, len(starts)) - 1
			fmt.Fprintf(os.Stderr, "wave at %d: first start %s, last start %s\n", i, starts[i].Sub(start), starts[end].Sub(start))
		}
		starts = nil
		startsMu.Unlock()
	}
	stopSampling()
	sw.Wait()
	cancel()
	wg.Wait()
	capN := max(1, int(math.Floor(fraction*float64(n)+1e-9)))
	waves := (n + capN - 1) / capN
	ideal := time.Duration(math.Ceil(1/fraction-1e-9)) * d
	waveD := time.Duration(waves) * d
	if *canary {
		waveD += d // the canary's own deploy, before the waves
	}
	return row{
		stage: first.Sub(start),
		n:     n, capN: capN, waves: waves, d: d, t: t,
		ratio:       t.Seconds() / ideal.Seconds(),
		overhead:    t.Seconds() / waveD.Seconds(),
		peakHolders: peakHolders.Load(), peakInst: peak.Load(), samples: samples.Load(),
		redisCalls: calls, redisBusy: busy,
	}, nil
}

// redisLoad sums the commands Redis ran and the time it spent on them since
// the last CONFIG RESETSTAT (INFO commandstats).
func redisLoad(ctx context.Context, rdb *redis.Client) (calls int64, busy time.Duration) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(info, "\n") {
		_, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				calls += n
			case "usec":
				busy += time.Duration(n) * time.Microsecond
			}
		}
	}
	return calls, busy
}
