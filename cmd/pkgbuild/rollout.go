package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/puller/gossip"
	"github.com/aptfleet/aptfleet/puller/redisstate"
	"github.com/aptfleet/aptfleet/repo"
)

// announceFlags are publish's and promote's --announce options: after the
// index changed, fire the Serf "deploy" event so the fleet checks now instead
// of at its next cron tick.
type announceFlags struct {
	addrs   []string
	keyFile string
}

func (a *announceFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&a.addrs, "announce", nil, "after the change, send a Serf deploy event for each package through the fleet agent at `ADDR` (host:port, repeatable)")
	cmd.Flags().StringVar(&a.keyFile, "announce-key-file", "", "file holding the fleet's base64 Serf encryption key (as serf.encrypt_key_file in puller.yaml)")
}

// announce sends one deploy event per app name for env. It is a no-op
// without --announce.
func (a *announceFlags) announce(ctx context.Context, stderr io.Writer, env string, pkgs []repo.Package) error {
	if len(a.addrs) == 0 || len(pkgs) == 0 {
		return nil
	}
	var key []byte
	if a.keyFile != "" {
		var err error
		if key, err = gossip.ReadKeyFile(a.keyFile); err != nil {
			return fmt.Errorf("--announce-key-file: %w", err)
		}
	}
	apps := map[string]bool{}
	for _, p := range pkgs {
		apps[p.Name] = true
	}
	names := make([]string, 0, len(apps))
	for n := range apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, app := range names {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := gossip.Announce(actx, a.addrs, key, app, env)
		cancel()
		if err != nil {
			return fmt.Errorf("announce %s/%s via %s: %w", app, env, strings.Join(a.addrs, ","), err)
		}
		fmt.Fprintf(stderr, "announced deploy %s/%s\n", app, env)
	}
	return nil
}

// waitFlags are promote's --wait-rollout options.
type waitFlags struct {
	wait       bool
	redisURL   string
	prefix     string
	env        string
	timeout    time.Duration
	liveWithin time.Duration
	poll       time.Duration
}

func (w *waitFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&w.wait, "wait-rollout", false, "before promoting, wait until the --from env's rollout of each version has finished on every live host with no failure; fail if it halted")
	fl.StringVar(&w.redisURL, "redis", os.Getenv("APTFLEET_REDIS_URL"), "the fleet's Redis for --wait-rollout: redis://[user:password@]host:port/db, rediss:// for TLS (default $APTFLEET_REDIS_URL)")
	fl.StringVar(&w.prefix, "redis-prefix", "aptfleet:", "key prefix, as redis.prefix in puller.yaml")
	fl.StringVar(&w.env, "env", "", "the environment whose rollout to wait for (default: the --from dist)")
	fl.DurationVar(&w.timeout, "wait-timeout", 30*time.Minute, "give up waiting after this long")
	fl.DurationVar(&w.liveWithin, "live-within", 10*time.Minute, "a host not seen for this long is no longer part of the fleet")
	fl.DurationVar(&w.poll, "poll", 2*time.Second, "pause between reads of the rollout state")
}

// waitRollouts blocks until every ref's rollout in env finished cleanly.
func (w *waitFlags) waitRollouts(ctx context.Context, stderr io.Writer, env string, refs []repo.Ref) error {
	if !w.wait {
		return nil
	}
	if w.env != "" {
		env = w.env
	}
	if w.redisURL == "" {
		return errors.New("--wait-rollout needs --redis URL (or APTFLEET_REDIS_URL)")
	}
	opts, err := redis.ParseURL(w.redisURL)
	if err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("--redis %s: %w", opts.Addr, err)
	}
	st := redisstate.New(rdb, redisstate.Options{Prefix: w.prefix})
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	for _, ref := range refs {
		last := ""
		progress := func(s redisstate.EnvStatus) {
			live, on := 0, 0
			for _, h := range s.Hosts {
				if h.Live {
					live++
					if h.Version == ref.Version && h.State == "ok" {
						on++
					}
				}
			}
			line := fmt.Sprintf("waiting for %s/%s %s: %d of %d live hosts healthy on it", ref.Name, env, ref.Version, on, live)
			if line != last {
				fmt.Fprintln(stderr, line)
				last = line
			}
		}
		ro, err := st.WaitRollout(ctx, ref.Name, env, ref.Version, redisstate.WaitOptions{
			LiveWithin: w.liveWithin, Poll: w.poll, Progress: progress,
		})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("rollout of %s/%s %s not finished after %s", ref.Name, env, ref.Version, w.timeout)
			}
			return err
		}
		fmt.Fprintf(stderr, "rollout of %s/%s %s finished: %d done, %d failed\n", ref.Name, env, ref.Version, ro.Done, ro.Failed)
	}
	return nil
}
