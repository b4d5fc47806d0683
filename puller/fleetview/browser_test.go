package fleetview_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/fleetview"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// TestPageInChromium serves the live page over a real redis-server holding a
// rollout in progress and drives it in Debian's headless chromium: the counts
// match the fleet, the page follows a host's record changing without a
// reload, and a screenshot is kept in the test's artifact directory.
func TestPageInChromium(t *testing.T) {
	testenv.NeedTools(t, "chromium")
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	st := redisstate.New(rdb, redisstate.Options{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// hello/production: 1.4.0-1 rolling over 5 hosts, 2 done, 1 deploying.
	must(st.Record(ctx, withActor(event.New(event.Promoted, "hello", "production", "1.4.0-1", "", time.Now()), "jenkins", "staging")))
	must(st.StartRollout(ctx, "hello", "production", "1.4.0-1", 5))
	must(st.Record(ctx, event.New(event.RolloutStarted, "hello", "production", "1.4.0-1", "i-1", time.Now())))
	for _, h := range []string{"i-1", "i-2"} {
		must(st.SetHost(ctx, "hello", "production", h, "1.4.0-1", puller.StateOK))
		_, err := st.FinishHost(ctx, "hello", "production", "1.4.0-1", true)
		must(err)
	}
	must(st.SetHost(ctx, "hello", "production", "i-3", "1.3.2-1", puller.StateDeploying))
	must(st.SetHost(ctx, "hello", "production", "i-4", "1.3.2-1", puller.StateWaiting))
	must(st.SetHost(ctx, "hello", "production", "i-5", "1.3.2-1", puller.StateWaiting))
	// hello/staging: halted, and paused.
	must(st.StartRollout(ctx, "hello", "staging", "1.5.0-1", 1))
	_, err := st.MarkBroken(ctx, "hello", "staging", "1.5.0-1", puller.Broken{Reason: "health check: 503 <script>alert(1)</script>", Host: "i-s1"})
	must(err)
	must(st.SetHost(ctx, "hello", "staging", "i-s1", "1.4.0-1", puller.StateOK))
	_, _, err = st.SetPause(ctx, "hello", "staging", redisstate.Pause{Actor: "alice@bastion", Reason: "looking"}, event.New(event.Paused, "hello", "staging", "", "", time.Now()))
	must(err)

	web := httptest.NewServer(&fleetview.Server{State: st, Refresh: 300 * time.Millisecond})
	t.Cleanup(web.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 60*time.Second)
	defer cancelT()

	prod := `#env-hello-production`
	// text reads a node's text in one script run: the page swaps its fleet
	// section in at every refresh, and a node looked up before a swap and
	// read after it reads as empty.
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(function (n) { return n ? n.textContent : "(no " + `+strconv.Quote(sel)+` + ")"; })(document.querySelector(`+strconv.Quote(sel)+`))`))
		must(err)
		return strings.TrimSpace(s)
	}
	count := func(version string) string {
		t.Helper()
		return text(prod + ` .bar span[data-version="` + version + `"] .count`)
	}
	must(chromedp.Do(bctx, chromedp.Navigate(web.URL+"/"), chromedp.WaitVisible(prod)))
	if got := count("1.4.0-1"); got != "2" {
		t.Errorf("hosts on 1.4.0-1: %s, want 2", got)
	}
	if got := count("1.3.2-1"); got != "3" {
		t.Errorf("hosts on 1.3.2-1: %s, want 3", got)
	}
	if done := text(prod + ` .rollout .done`); done != "2" {
		t.Errorf("rollout done: %s, want 2", done)
	}
	staging := text(`#env-hello-staging`)
	for _, want := range []string{"paused", "paused by alice@bastion", "broken 1.5.0-1: health check: 503 <script>alert(1)</script>"} {
		if !strings.Contains(staging, want) {
			t.Errorf("staging section lacks %q:\n%s", want, staging)
		}
	}
	past := text(prod + ` table.past`)
	if !strings.Contains(past, "1.4.0-1") || !strings.Contains(past, "jenkins from staging") {
		t.Errorf("last rollouts: %q", past)
	}

	// i-3 finishes: the page follows without a reload.
	must(st.SetHost(ctx, "hello", "production", "i-3", "1.4.0-1", puller.StateOK))
	_, err = st.FinishHost(ctx, "hello", "production", "1.4.0-1", true)
	must(err)
	_, err = chromedp.Run(bctx, chromedp.Poll[bool](
		`document.querySelector('`+prod+` .bar span[data-version="1.4.0-1"] .count').textContent === "3"`+
			` && document.querySelector('`+prod+` .rollout .done').textContent === "3"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("the page did not follow i-3 to 1.4.0-1: %v (1.4.0-1 on %s)", err, count("1.4.0-1"))
	}
	state, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('tr[data-host="i-3"]').dataset.state`))
	must(err)
	if state != "ok" {
		t.Errorf("i-3's row says %q, want ok", state)
	}
	alerts, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('section script').length`))
	must(err)
	if alerts != 0 {
		t.Error("a reason from Redis became markup")
	}

	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	must(err)
	shot := filepath.Join(t.ArtifactDir(), "fleet.png")
	must(os.WriteFile(shot, png, 0o644))
	t.Logf("screenshot: %s", shot)
}

func withActor(e event.Deploy, actor, from string) event.Deploy {
	e.Actor, e.From = actor, from
	return e
}
