package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"
)

// Poster delivers one Slack message.
type Poster interface {
	Post(ctx context.Context, msg *slack.WebhookMessage) error
}

var _ Poster = (*Webhook)(nil)

// Handler is the Lambda function: every record of an SNS event becomes one
// Slack message.
type Handler struct {
	Poster Poster
	Config Config
	Logger *slog.Logger // default slog.Default()
}

// Handle decodes, renders and posts every record. A message Slack refuses
// for good (a 4xx other than 429) is logged with Slack's error and not
// retried; a failure that may pass (5xx, a rate limit with no time left to
// wait, the network) is returned, so Lambda retries the invocation.
func (h *Handler) Handle(ctx context.Context, ev events.SNSEvent) error {
	logger := h.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if len(ev.Records) == 0 {
		logger.WarnContext(ctx, "event has no SNS records; nothing to send")
		return nil
	}
	var errs []error
	for i, rec := range ev.Records {
		msg := Decode(rec.SNS.Message)
		log := logger.With("message_id", rec.SNS.MessageID, "kind", string(msg.Kind))
		err := h.Poster.Post(ctx, Render(rec.SNS, msg, h.Config))
		var se *Error
		switch {
		case err == nil:
			log.InfoContext(ctx, "sent to slack")
		case errors.As(err, &se) && !se.Retryable():
			log.ErrorContext(ctx, "slack refused the message; not retrying", "status", se.StatusCode, "slack_error", se.Message)
		default:
			errs = append(errs, fmt.Errorf("record %d (message %s): %w", i, rec.SNS.MessageID, err))
		}
	}
	return errors.Join(errs...)
}
