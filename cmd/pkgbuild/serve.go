package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/puller/fleetview"
)

func newFleetServeCmd() *cobra.Command {
	var (
		f          fleetFlags
		listen     string
		refresh    time.Duration
		liveWithin time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Serve a read-only live web page of every app/env",
		Long: `serve serves one page: every app/env with a bar of live hosts per version,
the rollout's stage and progress, broken marks, the pause, the last rollouts
and the hosts table. It updates itself every --refresh without a reload. It
only reads Redis: actions stay in the CLI, where they are recorded with an
actor. The page needs no external asset (it works with no internet).
/fleet.json serves the same view as JSON.`,
		Example: `  pkgbuild fleet serve --listen 127.0.0.1:8080 --redis rediss://:TOKEN@redis.internal:6379`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, closeFn, err := f.connect(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			srv := &http.Server{
				Handler:           &fleetview.Server{State: st, Refresh: refresh, Options: fleetview.Options{LiveWithin: liveWithin}, Log: log},
				ReadHeaderTimeout: 10 * time.Second,
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving the fleet view on http://%s/\n", ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	cmd.Flags().DurationVar(&refresh, "refresh", time.Second, "how often the page updates itself")
	cmd.Flags().DurationVar(&liveWithin, "live-within", 10*time.Minute, "hosts not seen for this long are shown as gone")
	return cmd
}
