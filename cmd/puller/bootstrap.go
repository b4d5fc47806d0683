package main

import (
	"time"

	"github.com/spf13/cobra"
)

func newBootstrapCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap",
		Short: "First boot: install every app's newest good version without a lock, restart, health-check",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := setup(ctx, opts)
			if err != nil {
				return err
			}
			defer e.rdb.Close()
			a, err := e.agent(ctx, liveHosts{state: e.state, within: 10 * time.Minute}, nil)
			if err != nil {
				return err
			}
			return a.Bootstrap(ctx)
		},
	}
}
