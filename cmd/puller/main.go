// Command puller is the on-instance agent: it keeps the host's apps at the
// newest good version of their apt distribution, deploying under a Redis
// rolling lock sized from the live Serf membership.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aptfleet/aptfleet/puller"
)

// version is stamped by the Makefile with -ldflags -X.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "puller: "+err.Error())
		os.Exit(1)
	}
}

// options are the flags every subcommand shares.
type options struct {
	config string
	stderr io.Writer
}

// run executes the command line args, writing to stdout and stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts := &options{stderr: stderr}
	root := &cobra.Command{
		Use:   "puller",
		Short: "Keep this host's apps at the newest good version, one rolling slot at a time",
		Long: `puller checks the apps' apt distributions (one conditional request per
tick), and when a new version appears, waits for a slot of the app's Redis
rolling semaphore, drains, installs, restarts and health-checks; a failing
version is rolled back, and marked broken for the whole fleet once broken_after
hosts saw it fail on its own (a host's own fault quarantines that host only).`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&opts.config, "config", puller.DefaultConfigPath, "configuration file")
	root.AddCommand(
		newRunCmd(opts),
		newOnceCmd(opts),
		newBootstrapCmd(opts),
		newStatusCmd(opts),
		newPlanCmd(opts),
		newVersionCmd(),
	)
	return root.ExecuteContext(ctx)
}
