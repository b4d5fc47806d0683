package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/puller"
)

// noMembers sizes nothing: plan takes no deploy slot.
type noMembers struct{}

func (noMembers) Alive(app, env string) int { return 1 }

func newPlanCmd(opts *options) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Say what the next cycle would do for every app, and why, changing nothing",
		Long: `plan reads, for every app, the version installed, the signed index (refused
when stale, as a cycle would), the broken marks, the pause and this host's
record, and prints the target, every version skipped with its reason, the holds
in force and what the next cycle would do. It writes nothing: no Redis write,
no apt-get, no state file write. An unreadable or corrupt state file is an
error naming the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := setup(ctx, opts)
			if err != nil {
				return err
			}
			defer e.rdb.Close()
			a, err := e.agent(ctx, noMembers{}, nil)
			if err != nil {
				return err
			}
			plans, err := a.Plan(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Host string           `json:"host"`
					Apps []puller.AppPlan `json:"apps"`
				}{e.host, plans})
			}
			puller.WritePlan(cmd.OutOrStdout(), plans)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
