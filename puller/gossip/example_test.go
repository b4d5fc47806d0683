package gossip_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aptfleet/aptfleet/puller/gossip"
)

// Run the host's Serf member, count the live hosts of an app and environment,
// and react to deploy events.
func ExampleStart() {
	cfg := gossip.DefaultConfig()
	cfg.NodeName = "i-0abc" // the instance id
	cfg.Join = []string{"10.0.1.10", "10.0.2.10"}
	cfg.Tags = map[string]string{gossip.TagApps: "hello", gossip.TagEnv: "production"}
	ctx := context.Background()
	m, err := gossip.Start(ctx, cfg, slog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = m.Leave(lctx)
	}()
	_ = m.SetVersion("hello", "1.4.0-1")
	fmt.Println("hosts running hello/production:", m.Alive("hello", "production"))
	for d := range m.Deploys() {
		fmt.Println("deploy event for", d.App, d.Env) // run one check-and-deploy cycle
	}
}

// Tell the fleet that hello/production has a new version (what
// `pkgbuild publish --announce ADDR` does).
func ExampleAnnounce() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gossip.Announce(ctx, []string{"10.0.1.10:7946"}, nil, "hello", "production"); err != nil {
		fmt.Println(err)
	}
}
