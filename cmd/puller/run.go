package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller/gossip"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

func newRunCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the agent: check on the schedule and on deploy events, deploy under the rolling lock",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := setup(ctx, opts)
			if err != nil {
				return err
			}
			defer e.rdb.Close()
			var srv *http.Server
			var ln net.Listener
			if e.cfg.MetricsListen != "" {
				// Listen before anything else so a taken port fails at start.
				if ln, err = net.Listen("tcp", e.cfg.MetricsListen); err != nil {
					return err
				}
			}
			member, err := startGossip(ctx, e.cfg, e.host, e.log)
			if err != nil {
				if ln != nil {
					ln.Close()
				}
				return err
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				if err := member.Leave(ctx); err != nil {
					e.log.Warn("leave the gossip cluster", "err", err)
				}
			}()
			a, err := e.agent(ctx, member, member)
			if err != nil {
				return err
			}
			if ln != nil {
				mux := http.NewServeMux()
				mux.Handle("/metrics", a.Metrics().Handler())
				srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						e.log.Error("metrics listener", "err", err)
					}
				}()
				defer srv.Close()
			}
			go forwardDeploys(ctx, member.Deploys(), a.Notify)
			go forgetLeavers(ctx, member.Leaves(), e.state, e.log)
			a.Tick() // check once at start
			return a.Run(ctx)
		},
	}
}

// forgetLeavers removes the host record of every member that leaves the
// Serf cluster gracefully (an instance terminated or stopped), for each app
// it was tagged with, recording a forgotten event in the history. Every live
// member sees the leave; the first removal wins and the others find nothing.
func forgetLeavers(ctx context.Context, leaves <-chan gossip.Left, st *redisstate.Store, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-leaves:
			if !ok {
				return
			}
			for _, app := range l.Apps {
				ev := event.New(event.Forgotten, app, l.Env, "", l.Node, time.Now())
				ev.Actor, ev.Reason = "serf", "left the Serf cluster"
				err := st.Forget(ctx, app, l.Env, l.Node, ev)
				switch {
				case err == nil:
					log.Info("host left the cluster; its record is removed", "host", l.Node, "app", app, "env", l.Env)
				case !errors.Is(err, redisstate.ErrNoHost):
					log.Warn("remove the record of a host that left", "host", l.Node, "app", app, "err", err)
				}
			}
		}
	}
}

// forwardDeploys turns gossip "deploy" events into agent cycles.
func forwardDeploys(ctx context.Context, events <-chan gossip.Deploy, notify func(app, env string) bool) {
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-events:
			if !ok {
				return
			}
			notify(d.App, d.Env)
		}
	}
}
