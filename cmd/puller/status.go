package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/puller/redisstate"
)

func newStatusCmd(opts *options) *cobra.Command {
	var fleet, watch bool
	var every, liveWithin time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show this host's apps, or with --fleet every host of every app/env, from Redis",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := setup(ctx, opts)
			if err != nil {
				return err
			}
			defer e.rdb.Close()
			read := func(ctx context.Context) ([]redisstate.EnvStatus, error) {
				var envs []redisstate.AppEnv
				if fleet {
					if envs, err = e.state.AppEnvs(ctx); err != nil {
						return nil, err
					}
				} else {
					for _, a := range e.cfg.Apps {
						envs = append(envs, redisstate.AppEnv{App: a.Name, Env: a.Env})
					}
				}
				var out []redisstate.EnvStatus
				for _, ae := range envs {
					st, err := e.state.Status(ctx, ae.App, ae.Env, liveWithin)
					if err != nil {
						return nil, err
					}
					if !fleet {
						st.Hosts = onlyHost(st.Hosts, e.host)
					}
					out = append(out, st)
				}
				return out, nil
			}
			w := cmd.OutOrStdout()
			for {
				sts, err := read(ctx)
				if err != nil {
					return err
				}
				if watch {
					fmt.Fprint(w, "\033[H\033[2J") // home, clear screen
				}
				renderStatus(w, sts, time.Now())
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
	cmd.Flags().BoolVar(&fleet, "fleet", false, "every host of every app/env in Redis")
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw until interrupted")
	cmd.Flags().DurationVar(&every, "interval", 2*time.Second, "redraw interval with --watch")
	cmd.Flags().DurationVar(&liveWithin, "live-within", 10*time.Minute, "hosts not seen for this long are shown as gone")
	return cmd
}

func onlyHost(rows []redisstate.HostRow, host string) []redisstate.HostRow {
	var out []redisstate.HostRow
	for _, r := range rows {
		if r.Name == host {
			out = append(out, r)
		}
	}
	return out
}

// renderStatus writes one block per app/env: the latest rollout, broken
// versions, the hosts table and any warning.
func renderStatus(w io.Writer, sts []redisstate.EnvStatus, now time.Time) {
	for i, st := range sts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s/%s\n", st.App, st.Env)
		if r := st.Latest; r != nil {
			state := "running"
			switch {
			case !r.Finished.IsZero() && r.Failed > 0:
				state = "halted " + ago(now, r.Finished)
			case !r.Finished.IsZero():
				state = "finished " + ago(now, r.Finished)
			case st.LiveDone:
				state = "done on every live host"
			}
			capText := ""
			if r.Cap > 0 {
				capText = fmt.Sprintf(", cap %d", r.Cap)
			}
			fmt.Fprintf(w, "  rollout %s: %d/%d done, %d failed%s, started %s, %s\n",
				r.Version, r.Done, r.Total, r.Failed, capText, ago(now, r.Started), state)
		}
		versions := make([]string, 0, len(st.Broken))
		for v := range st.Broken {
			versions = append(versions, v)
		}
		sort.Strings(versions)
		for _, v := range versions {
			b := st.Broken[v]
			fmt.Fprintf(w, "  broken %s: %s (host %s, %s)\n", v, b.Reason, b.Host, ago(now, b.At))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  HOST\tVERSION\tSTATE\tLAST SEEN")
		for _, h := range st.Hosts {
			seen := ago(now, h.At)
			if !h.Live {
				seen += " (gone)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", h.Name, dash(h.Version), h.State, seen)
		}
		tw.Flush()
		if st.Warning != "" {
			fmt.Fprintf(w, "  WARNING: %s\n", st.Warning)
		}
	}
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// ago renders how long before now t was, coarsely.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return t.UTC().Format("2006-01-02 15:04")
}
