package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/aptfleet/aptfleet/notifier"
	"github.com/aptfleet/aptfleet/notifier/ssm"
)

// Environment of the Lambda function.
const (
	envSSMParameter = "SLACK_WEBHOOK_SSM_PARAMETER" // name of the SecureString holding the webhook URL
	envWebhookURL   = "SLACK_WEBHOOK_URL"           // the webhook URL itself (local use)
	envHaltMention  = "SLACK_HALT_MENTION"          // mention for halted rollouts; default <!here>, empty for none
)

// serveLambda reads the webhook once, at cold start, and serves invocations
// until the runtime stops the process. It returns only on a setup error.
func serveLambda(ctx context.Context, lookup func(string) (string, bool), logger *slog.Logger) error {
	h, err := newLambdaHandler(ctx, lookup, logger)
	if err != nil {
		return err
	}
	lambda.StartWithOptions(h.Handle, lambda.WithContext(ctx))
	return nil
}

// newLambdaHandler builds the handler from the function's environment.
func newLambdaHandler(ctx context.Context, lookup func(string) (string, bool), logger *slog.Logger) (*notifier.Handler, error) {
	webhook, err := webhookURL(ctx, lookup)
	if err != nil {
		return nil, err
	}
	cfg := notifier.DefaultConfig()
	if v, ok := lookup(envHaltMention); ok {
		cfg.HaltMention = v
	}
	return &notifier.Handler{
		Poster: notifier.NewWebhook(webhook, &http.Client{Timeout: 10 * time.Second}, notifier.DefaultWebhookConfig()),
		Config: cfg,
		Logger: logger,
	}, nil
}

// webhookURL reads the webhook from SSM when a parameter is named, else from
// the plain variable.
func webhookURL(ctx context.Context, lookup func(string) (string, bool)) (string, error) {
	if name, ok := lookup(envSSMParameter); ok && name != "" {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return "", fmt.Errorf("load AWS config: %w", err)
		}
		return ssm.Webhook(ctx, awsssm.NewFromConfig(awsCfg), name)
	}
	if u, ok := lookup(envWebhookURL); ok && u != "" {
		if err := checkWebhook(u); err != nil {
			return "", fmt.Errorf("%s: %w", envWebhookURL, err)
		}
		return u, nil
	}
	return "", fmt.Errorf("no Slack webhook: set %s to an SSM SecureString name, or %s", envSSMParameter, envWebhookURL)
}
