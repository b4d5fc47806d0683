package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"
	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/notifier"
)

func newRenderCmd() *cobra.Command {
	cfg := notifier.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "render FILE",
		Short: "Print the Slack payload of each record of an SNS event file (no network)",
		Long: `render reads a Lambda SNS event (a JSON document with Records) and prints, for
each record, the Slack webhook payload the Lambda would post: one indented JSON
object per record.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msgs, err := renderFile(args[0], cfg)
			if err != nil {
				return err
			}
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			for _, m := range msgs {
				if err := enc.Encode(m); err != nil {
					return fmt.Errorf("encode payload: %w", err)
				}
			}
			_, err = cmd.OutOrStdout().Write(out.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&cfg.HaltMention, "halt-mention", cfg.HaltMention, "mention that opens a halted rollout's message (empty for none)")
	return cmd
}

// renderFile reads an SNS event file and renders every record.
func renderFile(path string, cfg notifier.Config) ([]*slack.WebhookMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // "open FILE: ..." names the file
	}
	var probe struct {
		Records json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%s: not an SNS event: %w", path, err)
	}
	var ev events.SNSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%s: not an SNS event: %w", path, err)
	}
	if len(ev.Records) == 0 {
		return nil, fmt.Errorf("%s: not an SNS event: no Records", path)
	}
	var msgs []*slack.WebhookMessage
	for _, rec := range ev.Records {
		msgs = append(msgs, notifier.Render(rec.SNS, notifier.Decode(rec.SNS.Message), cfg))
	}
	return msgs, nil
}

// checkWebhook rejects a webhook that is not an http(s) URL, without
// repeating it (it is a secret).
func checkWebhook(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return errors.New("not an http(s) URL")
	}
	return nil
}
