package main

import (
	"time"

	"github.com/spf13/cobra"
)

func newOnceCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "once",
		Short: "Run one check-and-deploy cycle of every app, then exit (also a Serf event handler)",
		Long: `once runs one cycle of every configured app: check the dist, and when a
newer good version is there, deploy it under the rolling lock. The live host
count that sizes the lock comes from the hosts' Redis records (seen within
10 minutes), since the daemon's Serf member owns the gossip port.`,
		Args: cobra.NoArgs,
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
			return a.Once(ctx)
		},
	}
}
