package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/puller/fleetview"
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
			read := func(ctx context.Context) ([]fleetview.Env, error) {
				var envs []redisstate.AppEnv // nil: every app/env in Redis
				if !fleet {
					for _, a := range e.cfg.Apps {
						envs = append(envs, redisstate.AppEnv{App: a.Name, Env: a.Env})
					}
				}
				out, err := fleetview.Read(ctx, e.state, envs, time.Now(), fleetview.Options{LiveWithin: liveWithin})
				if err != nil {
					return nil, err
				}
				if !fleet {
					for i := range out {
						out[i].Hosts = onlyHost(out[i].Hosts, e.host)
					}
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
				fleetview.Text(w, sts, time.Now())
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

func onlyHost(rows []fleetview.Host, host string) []fleetview.Host {
	out := []fleetview.Host{}
	for _, r := range rows {
		if r.Name == host {
			out = append(out, r)
		}
	}
	return out
}
