package main

import (
	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/puller"
)

func newBootstrapCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap",
		Short: "First boot: install every app's newest good version without a lock, restart, health-check",
		Args:  cobra.NoArgs,
		RunE:  oneShot(opts, (*puller.Agent).Bootstrap),
	}
}
