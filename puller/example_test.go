package puller_test

import (
	"fmt"
	"strings"

	"github.com/aptfleet/aptfleet/puller"
)

func ExampleParseConfig() {
	cfg, err := puller.ParseConfig("puller.yaml", strings.NewReader(`
fraction: 0.34
apps:
  - name: hello
    env: production
    repo: s3://acme-apt/fleet
    health: {url: "http://127.0.0.1:8080/healthz"}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	a := cfg.Apps[0]
	fmt.Println(cfg.Schedule, cfg.Fraction, a.Dist, a.Health.Consecutive, a.Drain.Strategy)

	_, err = puller.ParseConfig("puller.yaml", strings.NewReader("fraction: 2\napps: [{name: hello, env: prod, repo: s3://acme-apt/fleet}]\n"))
	fmt.Println(err)
	// Output:
	// @every 1m 0.34 production 3 none
	// puller.yaml: puller: bad config: fraction: 2 is outside (0, 1]
}
