package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/fleetview"
	"github.com/aptfleet/aptfleet/puller/redisstate"
	"github.com/aptfleet/aptfleet/puller/sns"
)

// newFleetCmd returns `pkgbuild fleet`, the operator's control plane on the
// state the agents keep in Redis.
func newFleetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "See and steer the fleet's rollouts through the agents' Redis state",
		Long: `fleet reads and changes the state the agents keep in Redis, from anywhere
Redis is reachable (CI, a bastion, an instance). Every change records who
made it (--actor) and why (--reason), lands in the app/env's history and,
with --sns-topic-arn, is sent as an event the notifier renders in Slack.`,
	}
	cmd.AddCommand(
		newFleetStatusCmd(),
		newFleetHistoryCmd(),
		newFleetPauseCmd(),
		newFleetResumeCmd(),
		newFleetUnbreakCmd(),
		newFleetForgetCmd(),
		newFleetServeCmd(),
		newFleetPromoteCanaryCmd(),
	)
	return cmd
}

// fleetFlags are the options every fleet command takes.
type fleetFlags struct {
	redisURL    string
	prefix      string
	actor       string
	reason      string
	snsTopic    string
	snsEndpoint string

	pub *sns.Publisher
}

func (f *fleetFlags) register(cmd *cobra.Command, change bool) {
	f.registerRedis(cmd)
	if change {
		f.registerChange(cmd)
	}
}

func (f *fleetFlags) registerRedis(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.redisURL, "redis", os.Getenv("APTFLEET_REDIS_URL"), "the fleet's Redis: redis://[user:password@]host:port/db, rediss:// for TLS (default $APTFLEET_REDIS_URL)")
	fl.StringVar(&f.prefix, "redis-prefix", "aptfleet:", "key prefix, as redis.prefix in puller.yaml")
}

func (f *fleetFlags) registerChange(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.actor, "actor", "", "who makes the change (default: $BUILD_USER and $BUILD_URL under Jenkins, else $USER@hostname)")
	fl.StringVar(&f.snsTopic, "sns-topic-arn", "", "also send the change as an event to this SNS topic (the notifier's)")
	fl.StringVar(&f.snsEndpoint, "sns-endpoint", "", "SNS endpoint URL (default: AWS_ENDPOINT_URL_SNS, else AWS)")
}

// quietRedis silences go-redis's own logger, which prints every failed dial
// of its pool before the command's one-line error.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// connect opens the Redis named by --redis and checks that it answers.
func (f *fleetFlags) connect(ctx context.Context) (*redisstate.Store, func(), error) {
	redis.SetLogger(quietRedis{})
	if f.redisURL == "" {
		return nil, nil, errors.New("no Redis: pass --redis URL or set APTFLEET_REDIS_URL")
	}
	opts, err := redis.ParseURL(f.redisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("--redis %s: %w", redactURL(f.redisURL), err)
	}
	opts.MaxRetries = 1
	opts.DialTimeout = 5 * time.Second
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("redis %s: %w", opts.Addr, err)
	}
	return redisstate.New(rdb, redisstate.Options{Prefix: f.prefix, ForgetAfter: puller.DefaultConfig().ForgetAfter}), func() { rdb.Close() }, nil
}

// redactURL drops a password from a Redis URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// prepare validates what a change needs before anything changes: the actor
// and the SNS topic.
func (f *fleetFlags) prepare(ctx context.Context) error {
	if f.actor == "" {
		f.actor = defaultActor()
	}
	if f.snsTopic == "" {
		return nil
	}
	var opts []func(*awsconfig.LoadOptions) error
	if f := strings.Split(f.snsTopic, ":"); len(f) == 6 && f[3] != "" {
		opts = append(opts, awsconfig.WithRegion(f[3])) // the topic's region
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("--sns-topic-arn: aws config: %w", err)
	}
	client := awssns.NewFromConfig(cfg, func(o *awssns.Options) {
		if f.snsEndpoint != "" {
			o.BaseEndpoint = &f.snsEndpoint
		}
	})
	p, err := sns.New(client, f.snsTopic)
	if err != nil {
		return fmt.Errorf("--sns-topic-arn: %w", err)
	}
	f.pub = p
	return nil
}

// event returns an operator event of kind k with the actor and reason.
func (f *fleetFlags) event(k event.Kind, app, env, version, host string) event.Deploy {
	ev := event.New(k, app, env, version, host, time.Now())
	ev.Actor, ev.Reason = f.actor, f.reason
	return ev
}

// emit sends ev to SNS when a topic was given. The change it tells of is
// already made, so a failure says so.
func (f *fleetFlags) emit(ctx context.Context, done string, ev event.Deploy) error {
	if f.pub == nil {
		return nil
	}
	if err := f.pub.Publish(ctx, ev); err != nil {
		return fmt.Errorf("%s, but the event was not sent: %w", done, err)
	}
	return nil
}

// change runs one recorded change of the app/env named by arg: it checks that
// a reason was given when the change needs one, connects to Redis, resolves
// APP/ENV, prepares the actor and the event sink, and then calls do, so that
// nothing is written before every input was found good.
func (f *fleetFlags) change(ctx context.Context, arg, needReason string, do func(st *redisstate.Store, app, env string) error) error {
	if needReason != "" && strings.TrimSpace(f.reason) == "" {
		return errors.New(needReason)
	}
	st, closeFn, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	app, env, err := appEnv(ctx, st, arg)
	if err != nil {
		return err
	}
	if err := f.prepare(ctx); err != nil {
		return err
	}
	return do(st, app, env)
}

// defaultActor names who runs the command: the Jenkins build that runs it,
// else user@host.
func defaultActor() string {
	user, build := os.Getenv("BUILD_USER"), os.Getenv("BUILD_URL")
	switch {
	case user != "" && build != "":
		return user + " (" + build + ")"
	case build != "":
		return "jenkins (" + build + ")"
	case user != "":
		return user
	}
	user = os.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return user
	}
	return user + "@" + host
}

// appEnv parses APP/ENV and checks that Redis knows it.
func appEnv(ctx context.Context, st *redisstate.Store, arg string) (string, string, error) {
	app, env, ok := strings.Cut(arg, "/")
	if !ok || app == "" || env == "" || strings.ContainsAny(arg, ": \t\n") || strings.Contains(env, "/") {
		return "", "", fmt.Errorf("%q: want APP/ENV, as hello/production", arg)
	}
	known, err := st.Known(ctx, app, env)
	if err != nil {
		return "", "", err
	}
	if !known {
		all, err := st.AppEnvs(ctx)
		if err != nil {
			return "", "", err
		}
		names := make([]string, len(all))
		for i, ae := range all {
			names[i] = ae.App + "/" + ae.Env
		}
		list := "none"
		if len(names) > 0 {
			list = strings.Join(names, ", ")
		}
		return "", "", fmt.Errorf("unknown app/env %s: Redis holds no record of it (known: %s)", fleetview.Clean(arg), list)
	}
	return app, env, nil
}

func newFleetStatusCmd() *cobra.Command {
	var (
		f          fleetFlags
		watch, js  bool
		every      time.Duration
		liveWithin time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [APP/ENV]",
		Short: "Show every app/env (or one): hosts, versions, the rollout's stage, broken marks, pauses",
		Long: `status shows what puller status --fleet shows, without a puller config: per
host the version (and the target while deploying), state and last seen; the
latest rollout's stage and progress; broken marks with their reasons; a pause
with who and why; a warning when an env runs more than one version after its
rollout ended. Records that do not parse are shown as unreadable.`,
		Example: `  pkgbuild fleet status --redis rediss://:TOKEN@redis.internal:6379
  pkgbuild fleet status hello/production --watch`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, closeFn, err := f.connect(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			var envs []redisstate.AppEnv
			if len(args) == 1 {
				app, env, err := appEnv(ctx, st, args[0])
				if err != nil {
					return err
				}
				envs = []redisstate.AppEnv{{App: app, Env: env}}
			}
			w := cmd.OutOrStdout()
			for {
				now := time.Now()
				view, err := fleetview.Read(ctx, st, envs, now, fleetview.Options{LiveWithin: liveWithin})
				if err != nil {
					if watch && ctx.Err() != nil {
						return nil
					}
					return oneLine(err)
				}
				switch {
				case js:
					if err := fleetview.JSON(w, view); err != nil {
						return err
					}
				default:
					if watch {
						fmt.Fprint(w, "\033[H\033[2J") // home, clear screen
					}
					if len(view) == 0 {
						fmt.Fprintln(w, "no app/env recorded in Redis")
					}
					fleetview.Text(w, view, now)
				}
				if !watch {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw until interrupted")
	cmd.Flags().BoolVar(&js, "json", false, "print the view as JSON (one document per redraw with --watch)")
	cmd.Flags().DurationVar(&every, "interval", 2*time.Second, "redraw interval with --watch")
	cmd.Flags().DurationVar(&liveWithin, "live-within", 10*time.Minute, "hosts not seen for this long are shown as gone")
	return cmd
}

func newFleetHistoryCmd() *cobra.Command {
	var (
		f     fleetFlags
		limit int
		js    bool
	)
	cmd := &cobra.Command{
		Use:   "history APP/ENV",
		Short: "Show the last rollouts of an app/env and the operator actions between them",
		Long: `history reads the app/env's history stream (written by the agents and by
pkgbuild): per rollout the version, who promoted it and from where, start,
end, outcome and per-host results; then the timeline, operator actions
included.`,
		Example: `  pkgbuild fleet history hello/production --limit 5`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, closeFn, err := f.connect(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			app, env, err := appEnv(ctx, st, args[0])
			if err != nil {
				return err
			}
			entries, err := st.History(ctx, app, env, 0)
			if err != nil {
				return oneLine(err)
			}
			if js {
				past := fleetview.Rollouts(entries)
				if limit > 0 && len(past) > limit {
					past = past[len(past)-limit:]
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"app": app, "env": env, "rollouts": past, "entries": entries})
			}
			fleetview.HistoryText(cmd.OutOrStdout(), app, env, entries, limit)
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().IntVar(&limit, "limit", 10, "how many rollouts to show (0: every one kept)")
	cmd.Flags().BoolVar(&js, "json", false, "print the history as JSON")
	return cmd
}

func newFleetPauseCmd() *cobra.Command {
	var f fleetFlags
	cmd := &cobra.Command{
		Use:   "pause APP/ENV --reason TEXT",
		Short: "Stop hosts from starting deploys of an app/env until resumed",
		Long: `pause stops every host of APP/ENV from starting a deploy: hosts in the middle
of a step finish it and hold; hosts already on a version stay on it; a new
instance's bootstrap still installs the newest good version.`,
		Example: `  pkgbuild fleet pause hello/production --reason "database migration running"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return f.change(ctx, args[0], "pause needs --reason TEXT: it is shown to everyone who sees the pause", func(st *redisstate.Store, app, env string) error {
				ev := f.event(event.Paused, app, env, "", "")
				p, first, err := st.SetPause(ctx, app, env, redisstate.Pause{Actor: f.actor, Reason: f.reason, At: ev.Time}, ev)
				if err != nil {
					return oneLine(err)
				}
				if !first {
					fmt.Fprintf(cmd.OutOrStdout(), "%s/%s is already paused by %s since %s: %s\n", app, env,
						fleetview.Clean(p.Actor), p.At.UTC().Format(time.RFC3339), fleetview.Clean(p.Reason))
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "paused %s/%s until `pkgbuild fleet resume %s/%s`\n", app, env, app, env)
				return f.emit(ctx, "paused "+app+"/"+env, ev)
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (required)")
	return cmd
}

func newFleetResumeCmd() *cobra.Command {
	var f fleetFlags
	cmd := &cobra.Command{
		Use:     "resume APP/ENV",
		Short:   "Lift a pause: the rollout continues where it stopped",
		Example: `  pkgbuild fleet resume hello/production --reason "migration done"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return f.change(ctx, args[0], "", func(st *redisstate.Store, app, env string) error {
				ev := f.event(event.Resumed, app, env, "", "")
				p, err := st.ClearPause(ctx, app, env, ev)
				if err != nil {
					return oneLine(err)
				}
				if p == nil {
					return fmt.Errorf("%s/%s is not paused", app, env)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "resumed %s/%s (paused by %s %s: %s)\n", app, env,
					fleetview.Clean(p.Actor), fleetview.Ago(time.Now(), p.At), fleetview.Clean(p.Reason))
				return f.emit(ctx, "resumed "+app+"/"+env, ev)
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&f.reason, "reason", "", "why")
	return cmd
}

func newFleetUnbreakCmd() *cobra.Command {
	var f fleetFlags
	cmd := &cobra.Command{
		Use:   "unbreak APP/ENV VERSION --reason TEXT",
		Short: "Remove a version's broken mark and reset its halted rollout",
		Long: `unbreak removes VERSION's broken mark in APP/ENV and resets its halted rollout
(failed back to 0, no longer finished), so the hosts take the version again
at their next check. It prints what it cleared.`,
		Example: `  pkgbuild fleet unbreak hello/production 1.4.0-1 --reason "the 503s came from the database failover"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			version := args[1]
			return f.change(ctx, args[0], "unbreak needs --reason TEXT: the version failed on a host once", func(st *redisstate.Store, app, env string) error {
				ev := f.event(event.Unbroken, app, env, version, "")
				u, err := st.Unbreak(ctx, app, env, version, ev)
				if errors.Is(err, redisstate.ErrNotBroken) {
					broken, berr := st.Broken(ctx, app, env)
					if berr != nil {
						return oneLine(berr)
					}
					list := make([]string, 0, len(broken))
					for v := range broken {
						list = append(list, v)
					}
					if len(list) == 0 {
						return fmt.Errorf("%s/%s %s is not marked broken (no version is)", app, env, fleetview.Clean(version))
					}
					return fmt.Errorf("%s/%s %s is not marked broken (broken: %s)", app, env, fleetview.Clean(version), fleetview.Clean(strings.Join(sortedStrings(list), ", ")))
				}
				if err != nil {
					return oneLine(err)
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "unbroken %s/%s %s: cleared the mark %q (host %s, %s)\n", app, env, fleetview.Clean(version),
					u.Mark.Reason, fleetview.Clean(dashed(u.Mark.Host)), u.Mark.At.UTC().Format(time.RFC3339))
				if u.Finished != "" || (u.Failed != "" && u.Failed != "0") {
					fmt.Fprintf(w, "reset its rollout: %s failed -> 0, finished %s -> running\n", dashed(u.Failed), dashed(u.Finished))
				}
				return f.emit(ctx, "unbroke "+app+"/"+env+" "+version, ev)
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&f.reason, "reason", "", "why the version is good after all (required)")
	return cmd
}

func newFleetForgetCmd() *cobra.Command {
	var f fleetFlags
	cmd := &cobra.Command{
		Use:     "forget APP/ENV HOST",
		Short:   "Remove a host's record (a terminated instance)",
		Example: `  pkgbuild fleet forget hello/production i-0dead0000000001 --reason terminated`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return f.change(ctx, args[0], "", func(st *redisstate.Store, app, env string) error {
				host := args[1]
				ev := f.event(event.Forgotten, app, env, "", host)
				if err := st.Forget(ctx, app, env, host, ev); err != nil {
					if errors.Is(err, redisstate.ErrNoHost) {
						return fmt.Errorf("%s/%s has no host %s", app, env, fleetview.Clean(host))
					}
					return oneLine(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "forgot host %s of %s/%s\n", fleetview.Clean(host), app, env)
				return f.emit(ctx, "forgot "+host, ev)
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&f.reason, "reason", "", "why")
	return cmd
}

func newFleetPromoteCanaryCmd() *cobra.Command {
	var (
		f     fleetFlags
		abort bool
	)
	cmd := &cobra.Command{
		Use:   "promote-canary APP/ENV VERSION [--abort]",
		Short: "End a version's canary stage: the rest of the fleet rolls on, or with --abort the version is marked broken",
		Long: `promote-canary ends VERSION's canary stage in APP/ENV, awaiting promotion
(promote: manual) or still baking: every other host may then take the
version. With --abort (and a --reason) the stage fails instead: the version
is marked broken with the reason, its rollout halts, and the canaries roll
back to the version they ran before.`,
		Example: `  pkgbuild fleet promote-canary hello/production 1.4.0-1 --reason "dashboards look fine"
  pkgbuild fleet promote-canary hello/production 1.4.0-1 --abort --reason "checkout latency up"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if abort && strings.TrimSpace(f.reason) == "" {
				return errors.New("promote-canary --abort needs --reason TEXT: it becomes the broken mark's reason")
			}
			st, closeFn, err := f.connect(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			app, env, err := appEnv(ctx, st, args[0])
			if err != nil {
				return err
			}
			version := args[1]
			if err := f.prepare(ctx); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			var before puller.CanaryStage
			var ev event.Deploy
			if abort {
				ev = f.event(event.CanaryAborted, app, env, version, "")
				mark := puller.Broken{Reason: "canary aborted by " + f.actor + ": " + f.reason, At: ev.Time}
				before, err = st.Abort(ctx, app, env, version, mark, ev)
			} else {
				ev = f.event(event.CanaryPromoted, app, env, version, "")
				before, err = st.Promote(ctx, app, env, version, ev)
			}
			if errors.Is(err, redisstate.ErrNoCanary) {
				switch before {
				case puller.CanaryNone:
					return fmt.Errorf("%s/%s %s has no canary stage", app, env, fleetview.Clean(version))
				default:
					return fmt.Errorf("%s/%s %s: the canary stage is already over (%s)", app, env, fleetview.Clean(version), before)
				}
			}
			if err != nil {
				return oneLine(err)
			}
			if abort {
				fmt.Fprintf(w, "aborted the canary of %s/%s %s (was %s): marked broken, the canaries roll back\n", app, env, version, before)
				return f.emit(ctx, "aborted the canary of "+app+"/"+env+" "+version, ev)
			}
			fmt.Fprintf(w, "promoted the canary of %s/%s %s (was %s): the rest of the fleet rolls on\n", app, env, version, before)
			return f.emit(ctx, "promoted the canary of "+app+"/"+env+" "+version, ev)
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&abort, "abort", false, "fail the stage: mark the version broken and roll the canaries back")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (required with --abort)")
	return cmd
}

func dashed(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
