package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/notifier"
)

func newSendCmd() *cobra.Command {
	var (
		webhook string
		timeout time.Duration
	)
	cfg := notifier.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "send --webhook URL FILE",
		Short: "Post the Slack message of each record of an SNS event file",
		Long: `send renders each record of a Lambda SNS event file as the Lambda would and posts
it to a Slack incoming webhook. Rate limits are waited out within --timeout; any
refusal by Slack is an error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if webhook == "" {
				return errors.New("send: --webhook URL is required")
			}
			if err := checkWebhook(webhook); err != nil {
				return fmt.Errorf("send: --webhook: %w", err)
			}
			msgs, err := renderFile(args[0], cfg)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			w := notifier.NewWebhook(webhook, &http.Client{Timeout: 10 * time.Second}, notifier.DefaultWebhookConfig())
			for i, m := range msgs {
				if err := w.Post(ctx, m); err != nil {
					return fmt.Errorf("send %s record %d: %w", args[0], i, err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sent %d message(s)\n", len(msgs))
			return nil
		},
	}
	cmd.Flags().StringVar(&webhook, "webhook", "", "Slack incoming webhook URL")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after this long, rate-limit waits included")
	cmd.Flags().StringVar(&cfg.HaltMention, "halt-mention", cfg.HaltMention, "mention that opens a halted rollout's message (empty for none)")
	return cmd
}
