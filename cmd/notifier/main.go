// Command notifier forwards Auto Scaling, CloudWatch alarm and aptfleet deploy
// events from SNS to Slack. Run by AWS Lambda (provided.al2023, as the binary
// bootstrap) it serves invocations; run by hand, `notifier render FILE` prints
// the Slack payload of an SNS event file and `notifier send --webhook URL FILE`
// posts it.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is stamped by the Makefile with -ldflags -X.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		logger := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("version", version)
		err = serveLambda(ctx, os.LookupEnv, logger)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifier: "+err.Error())
		os.Exit(1)
	}
}

// run executes the command line args, writing to stdout and stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:   "notifier",
		Short: "Turn SNS events (Auto Scaling, CloudWatch alarms, deploys) into Slack messages",
		Long: `notifier is the Lambda function that forwards the fleet's SNS topic to Slack.
Under AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it serves invocations, reading the
webhook URL from the SSM SecureString named by SLACK_WEBHOOK_SSM_PARAMETER, or
from SLACK_WEBHOOK_URL. Run by hand, it renders or sends an SNS event file.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newRenderCmd(),
		newSendCmd(),
	)
	return root.ExecuteContext(ctx)
}
