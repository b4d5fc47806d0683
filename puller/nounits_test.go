package puller_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/systemd"
)

// TestAppWithNoUnits: a package that runs no process (the repository's
// keyring package) is upgraded like an app: installed under the lock, with
// nothing restarted, where the real restarter finds no unit to restart.
func TestAppWithNoUnits(t *testing.T) {
	tb := newTestbed(t)
	tb.members.n.Store(1)
	tb.cfg.Apps[0].Name = "aptfleet-archive-keyring"
	tb.cfg.Apps[0].NoUnits = true
	tb.fleet.installed["i-1"] = "1"
	tb.index.publish("1")
	tb.index.publish("2")
	steps := tb.fleet.host("i-1")
	// systemctl as on a host where the package installed no unit file.
	noUnits := systemd.New(systemd.Config{Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return nil, nil
	}})
	a, err := puller.New(tb.cfg, "i-1", puller.Deps{
		Apps: []puller.AppDeps{{Index: tb.index, Installer: steps, Restarter: noUnits}},
		Lock: tb.sem, State: tb.state, Members: tb.members, Publisher: tb.events,
		Compare: strings.Compare, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Once(context.Background()); err != nil {
		t.Fatalf("deploy of an app with no units: %v", err)
	}
	if got := tb.fleet.versionOf("i-1"); got != "2" {
		t.Errorf("installed %q, want 2", got)
	}
}
