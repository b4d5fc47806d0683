package main

import (
	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/puller"
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
		RunE: oneShot(opts, (*puller.Agent).Once),
	}
}
