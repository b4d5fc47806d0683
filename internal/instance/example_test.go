package instance_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/aptfleet/aptfleet/internal/instance"
)

// Boot the cached Debian root, install a package, and look at a unit.
// (Needs root and systemd-nspawn; not run by go test.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inst, err := instance.Boot(ctx, os.Getenv("APTFLEET_TESTROOT"), instance.Options{
		Binds: []string{"/srv/debs:/debs"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer inst.Close()
	if err := inst.WaitSystemRunning(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := inst.Run(ctx, "dpkg", "-i", "/debs/hello_1.4.0-1_amd64.deb"); err != nil {
		log.Fatal(err)
	}
	out, err := inst.Shell(ctx, "systemctl is-active hello-web.service")
	fmt.Print(out, err)
}
