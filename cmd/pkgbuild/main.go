// Command pkgbuild builds an application into a Debian package and manages the
// signed apt repository the fleet installs from.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is stamped by the Makefile with -ldflags -X.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgbuild: "+message(ctx, err))
		os.Exit(1)
	}
}

// message is err on one line; after a signal it names the signal instead
// of "context canceled".
func message(ctx context.Context, err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
		if strings.Contains(msg, context.Canceled.Error()) {
			msg = strings.ReplaceAll(msg, context.Canceled.Error(), cause.Error())
		} else if !strings.Contains(msg, cause.Error()) {
			msg = cause.Error() + ": " + msg
		}
	}
	return msg
}

// run executes the command line args, writing to stdout and stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:   "pkgbuild",
		Short: "Build Debian packages and publish them to a signed apt repository",
		Long: `pkgbuild turns an application tree into a Debian package (each Procfile
process becomes a systemd unit) and manages the signed apt repository on S3 or
a local directory that the fleet's instances install from.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newBuildCmd(),
		newUserdataCmd(),
		newPublishCmd(),
		newPromoteCmd(),
		newYankCmd(),
		newResignCmd(),
		newRollbackCmd(),
		newPruneCmd(),
		newVerifyCmd(),
		newRepairCmd(),
		newListCmd(),
		newDistCmd(),
		newShowCmd(),
		newKeyCmd(),
		newKeyringCmd(),
		newFleetCmd(),
	)
	return root.ExecuteContext(ctx)
}
