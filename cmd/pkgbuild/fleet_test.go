package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/redisstate"
)

// fleetRig is a real redis-server holding a fleet's state as the agents
// write it.
type fleetRig struct {
	srv *testenv.Redis
	rdb *redis.Client
	st  *redisstate.Store
	url string
}

func newFleetRig(t *testing.T) *fleetRig {
	t.Helper()
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	r := &fleetRig{srv: srv, rdb: rdb, st: redisstate.New(rdb, redisstate.Options{}), url: "redis://" + srv.Addr}
	t.Setenv("APTFLEET_REDIS_URL", r.url)
	t.Setenv("BUILD_USER", "")
	t.Setenv("BUILD_URL", "")
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.st.StartRollout(ctx, "hello", "production", "1.4.0-1", 3))
	must(r.st.SetHost(ctx, "hello", "production", "i-1", "1.4.0-1", puller.StateOK))
	_, err := r.st.FinishHost(ctx, "hello", "production", "1.4.0-1", true)
	must(err)
	must(r.st.SetHost(ctx, "hello", "production", "i-2", "1.3.0-1", puller.StateDeploying))
	must(r.st.SetHost(ctx, "hello", "production", "i-3", "1.3.0-1", puller.StateOK))
	must(r.st.StartRollout(ctx, "hello", "staging", "1.5.0-1", 1))
	_, err = r.st.FinishHost(ctx, "hello", "staging", "1.5.0-1", false)
	must(err)
	_, err = r.st.MarkBroken(ctx, "hello", "staging", "1.5.0-1", puller.Broken{Reason: "health check: 503", Host: "i-s1"})
	must(err)
	must(r.st.SetHost(ctx, "hello", "staging", "i-s1", "1.4.0-1", puller.StateOK))
	return r
}

// dump is every key with its type and content, to show a refused command
// changed nothing.
func (r *fleetRig) dump(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	keys, err := r.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		typ := r.rdb.Type(ctx, k).Val()
		var v any
		switch typ {
		case "hash":
			v = r.rdb.HGetAll(ctx, k).Val()
		case "string":
			v = r.rdb.Get(ctx, k).Val()
		case "stream":
			v = r.rdb.XRange(ctx, k, "-", "+").Val()
		default:
			v = typ
		}
		fmt.Fprintf(&b, "%s %s %v\n", k, typ, v)
	}
	return b.String()
}

// refused runs a command that must fail with one line naming want, and
// change nothing in Redis.
func (r *fleetRig) refused(t *testing.T, want string, args ...string) {
	t.Helper()
	before := r.dump(t)
	out, err := runCLI(t, args...)
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("%v: err %v (out %q), want one line with %q", args, err, out, want)
	}
	if after := r.dump(t); after != before {
		t.Errorf("%v changed Redis:\nbefore:\n%s\nafter:\n%s", args, before, after)
	}
}

func TestFleetStatus(t *testing.T) {
	r := newFleetRig(t)
	out, err := runCLI(t, "fleet", "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello/production  rolling", "rollout 1.4.0-1: 1/3 done", "i-2   1.3.0-1  deploying",
		"hello/staging  halted", "broken 1.5.0-1: health check: 503 (host i-s1"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "fleet", "status", "hello/staging", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Envs []struct {
			App, Env, Stage string
			Hosts           []struct{ Name, Version string }
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(v.Envs) != 1 || v.Envs[0].Stage != "halted" || len(v.Envs[0].Hosts) != 1 || v.Envs[0].Hosts[0].Version != "1.4.0-1" {
		t.Fatalf("--json of hello/staging: %+v", v)
	}
	r.refused(t, "unknown app/env hello/prod: Redis holds no record of it (known: hello/production, hello/staging)", "fleet", "status", "hello/prod")
	r.refused(t, `"hello": want APP/ENV`, "fleet", "status", "hello")

	// --watch redraws until interrupted.
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var buf bytes.Buffer
	if err := run(ctx, []string{"fleet", "status", "--watch", "--interval", "200ms"}, &buf, &buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "hello/production"); n < 2 {
		t.Fatalf("--watch drew %d times in 700ms at 200ms", n)
	}
}

func TestFleetPauseResume(t *testing.T) {
	r := newFleetRig(t)
	ctx := context.Background()
	r.refused(t, "pause needs --reason", "fleet", "pause", "hello/production")
	r.refused(t, "unknown app/env nope/production", "fleet", "pause", "nope/production", "--reason", "x")
	r.refused(t, "hello/production is not paused", "fleet", "resume", "hello/production")

	out, err := runCLI(t, "fleet", "pause", "hello/production", "--reason", "migration", "--actor", "alice@bastion")
	if err != nil || !strings.Contains(out, "paused hello/production") {
		t.Fatalf("pause: %q %v", out, err)
	}
	p, err := r.st.Paused(ctx, "hello", "production")
	if err != nil || p == nil || p.Actor != "alice@bastion" || p.Reason != "migration" {
		t.Fatalf("pause record: %+v %v", p, err)
	}
	out, err = runCLI(t, "fleet", "pause", "hello/production", "--reason", "other", "--actor", "bob")
	if err != nil || !strings.Contains(out, "already paused by alice@bastion") {
		t.Fatalf("second pause: %q %v", out, err)
	}
	out, _ = runCLI(t, "fleet", "status", "hello/production")
	if !strings.Contains(out, "hello/production  paused") || !strings.Contains(out, "paused by alice@bastion") {
		t.Fatalf("status while paused:\n%s", out)
	}

	// Under Jenkins the actor is the build.
	t.Setenv("BUILD_USER", "jenkins-bot")
	t.Setenv("BUILD_URL", "https://ci.example.com/job/deploy/7/")
	out, err = runCLI(t, "fleet", "resume", "hello/production", "--reason", "migration done")
	if err != nil || !strings.Contains(out, "resumed hello/production (paused by alice@bastion") {
		t.Fatalf("resume: %q %v", out, err)
	}
	if p, _ := r.st.Paused(ctx, "hello", "production"); p != nil {
		t.Fatalf("still paused: %+v", p)
	}
	h, err := r.st.History(ctx, "hello", "production", 2)
	if err != nil || len(h) != 2 || h[0].Kind != event.Paused || h[1].Kind != event.Resumed ||
		h[1].Actor != "jenkins-bot (https://ci.example.com/job/deploy/7/)" || h[1].Reason != "migration done" {
		t.Fatalf("history: %+v %v", h, err)
	}
	out, err = runCLI(t, "fleet", "history", "hello/production")
	if err != nil || !strings.Contains(out, "paused by alice@bastion: migration") || !strings.Contains(out, "resumed by jenkins-bot") {
		t.Fatalf("fleet history: %q %v", out, err)
	}
}

func TestFleetUnbreakForget(t *testing.T) {
	r := newFleetRig(t)
	ctx := context.Background()
	r.refused(t, "hello/staging 1.4.0-1 is not marked broken (broken: 1.5.0-1)", "fleet", "unbreak", "hello/staging", "1.4.0-1", "--reason", "x")
	r.refused(t, "unbreak needs --reason", "fleet", "unbreak", "hello/staging", "1.5.0-1")
	out, err := runCLI(t, "fleet", "unbreak", "hello/staging", "1.5.0-1", "--reason", "database failover", "--actor", "alice")
	if err != nil || !strings.Contains(out, `cleared the mark "health check: 503" (host i-s1`) || !strings.Contains(out, "reset its rollout: 1 failed -> 0") {
		t.Fatalf("unbreak: %q %v", out, err)
	}
	ro, _ := r.st.Rollout(ctx, "hello", "staging", "1.5.0-1")
	if ro.Failed != 0 || !ro.Finished.IsZero() {
		t.Fatalf("rollout after unbreak: %+v", ro)
	}
	out, _ = runCLI(t, "fleet", "status", "hello/staging")
	if !strings.Contains(out, "hello/staging  rolling") || strings.Contains(out, "broken") {
		t.Fatalf("status after unbreak:\n%s", out)
	}
	r.refused(t, "hello/staging 1.5.0-1 is not marked broken (no version is)", "fleet", "unbreak", "hello/staging", "1.5.0-1", "--reason", "again")

	r.refused(t, "hello/production has no host i-9", "fleet", "forget", "hello/production", "i-9")
	if out, err := runCLI(t, "fleet", "forget", "hello/production", "i-3"); err != nil || !strings.Contains(out, "forgot host i-3 of hello/production") {
		t.Fatalf("forget: %q %v", out, err)
	}
	if hosts, _ := r.st.Hosts(ctx, "hello", "production"); len(hosts) != 2 {
		t.Fatalf("hosts after forget: %v", hosts)
	}
}

// TestFleetRedisDown runs the built binary against a port nothing listens
// on: one line on stderr (go-redis's pool logger silenced), exit 1.
func TestFleetRedisDown(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pkgbuild")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port := testenv.FreePort(t)
	for _, args := range [][]string{
		{"fleet", "status"},
		{"fleet", "status", "hello/production"},
		{"fleet", "history", "hello/production"},
		{"fleet", "pause", "hello/production", "--reason", "x"},
		{"fleet", "resume", "hello/production"},
		{"fleet", "unbreak", "hello/production", "1.4.0-1", "--reason", "x"},
		{"fleet", "forget", "hello/production", "i-1"},
		{"fleet", "serve", "--listen", "127.0.0.1:0"},
	} {
		cmd := exec.Command(bin, append(args, "--redis", fmt.Sprintf("redis://127.0.0.1:%d", port))...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("%v: %v, want exit 1", args, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "connection refused") || stdout.Len() != 0 {
			t.Fatalf("%v: stderr %q stdout %q, want one line", args, stderr.String(), stdout.String())
		}
	}
}

// snsStandIn is a hand-written stand-in for SNS's Publish call (no SNS runs
// here): it keeps each published message.
type snsStandIn struct {
	mu   sync.Mutex
	msgs []event.Deploy
}

func (s *snsStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	var d event.Deploy
	if err := json.Unmarshal([]byte(r.Form.Get("Message")), &d); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, d)
	s.mu.Unlock()
	fmt.Fprint(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>`)
}

func TestFleetEvents(t *testing.T) {
	newFleetRig(t)
	stand := &snsStandIn{}
	srv := httptest.NewServer(stand)
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	sns := []string{"--sns-topic-arn", "arn:aws:sns:eu-west-1:111122223333:aptfleet-events", "--sns-endpoint", srv.URL, "--actor", "alice"}
	for _, args := range [][]string{
		{"fleet", "pause", "hello/production", "--reason", "hold"},
		{"fleet", "resume", "hello/production"},
		{"fleet", "unbreak", "hello/staging", "1.5.0-1", "--reason", "fine"},
		{"fleet", "forget", "hello/production", "i-3"},
	} {
		if out, err := runCLI(t, append(args, sns...)...); err != nil {
			t.Fatalf("%v: %q %v", args, out, err)
		}
	}
	var kinds []string
	for _, m := range stand.msgs {
		if m.Actor != "alice" || m.Source != event.Source {
			t.Errorf("event without its actor or source: %+v", m)
		}
		kinds = append(kinds, string(m.Kind))
	}
	if got := strings.Join(kinds, ","); got != "paused,resumed,unbroken,forgotten" {
		t.Fatalf("events sent: %s", got)
	}
	_, err := runCLI(t, "fleet", "pause", "hello/production", "--reason", "x", "--sns-topic-arn", "not-an-arn")
	if err == nil || !strings.Contains(err.Error(), "not an SNS topic ARN") {
		t.Fatalf("bad topic: %v", err)
	}
	if p, _ := redisstate.New(redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(os.Getenv("APTFLEET_REDIS_URL"), "redis://")}), redisstate.Options{}).Paused(context.Background(), "hello", "production"); p != nil {
		t.Fatal("a pause refused for its topic ARN was set")
	}
}

// TestFleetServe starts `fleet serve` on a free port and reads the page and
// its JSON.
func TestFleetServe(t *testing.T) {
	newFleetRig(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- run(ctx, []string{"fleet", "serve", "--listen", addr}, &out, &out) }()
	var body string
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			b := new(bytes.Buffer)
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			body = b.String()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, `id="env-hello-production"`) || strings.Contains(body, "src=") || strings.Contains(body, "href=") {
		t.Fatalf("page:\n%s", body)
	}
	resp, err := http.Post("http://"+addr+"/", "text/plain", nil)
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v %v, want 405", resp, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFleetPromoteCanary(t *testing.T) {
	r := newFleetRig(t)
	ctx := context.Background()
	r.refused(t, "hello/production 1.4.0-1 has no canary stage", "fleet", "promote-canary", "hello/production", "1.4.0-1")
	if _, err := r.st.Join(ctx, "hello", "production", "1.4.0-1", "i-2", "", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.st.Pass(ctx, "hello", "production", "1.4.0-1", "i-2", "analysis passed: canary 0/600 5xx", true); err != nil {
		t.Fatal(err)
	}
	out, _ := runCLI(t, "fleet", "status", "hello/production")
	if !strings.Contains(out, "hello/production  awaiting promotion") {
		t.Fatalf("status while awaiting promotion:\n%s", out)
	}
	r.refused(t, "--abort needs --reason", "fleet", "promote-canary", "hello/production", "1.4.0-1", "--abort")
	out, err := runCLI(t, "fleet", "promote-canary", "hello/production", "1.4.0-1", "--actor", "alice@bastion", "--reason", "dashboards fine")
	if err != nil || !strings.Contains(out, "promoted the canary of hello/production 1.4.0-1 (was awaiting_promotion)") {
		t.Fatalf("promote-canary: %q %v", out, err)
	}
	if stage, _, _, _ := r.st.Peek(ctx, "hello", "production", "1.4.0-1", "i-9"); stage != puller.CanaryPromoted {
		t.Fatalf("stage after promote-canary: %q", stage)
	}
	r.refused(t, "the canary stage is already over (promoted)", "fleet", "promote-canary", "hello/production", "1.4.0-1", "--abort", "--reason", "x")

	// --abort on a running stage: broken, with the actor and reason.
	if _, err := r.st.Join(ctx, "hello", "production", "1.6.0-1", "i-3", "", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "fleet", "promote-canary", "hello/production", "1.6.0-1", "--abort", "--actor", "bob", "--reason", "latency up")
	if err != nil || !strings.Contains(out, "aborted the canary of hello/production 1.6.0-1 (was canary)") {
		t.Fatalf("promote-canary --abort: %q %v", out, err)
	}
	b, err := r.st.IsBroken(ctx, "hello", "production", "1.6.0-1")
	if err != nil || b == nil || b.Reason != "canary aborted by bob: latency up" {
		t.Fatalf("mark after --abort: %+v %v", b, err)
	}
	h, err := r.st.History(ctx, "hello", "production", 2)
	if err != nil || len(h) != 2 || h[0].Kind != event.CanaryPromoted || h[0].Actor != "alice@bastion" ||
		h[1].Kind != event.CanaryAborted || h[1].Reason != "latency up" {
		t.Fatalf("history: %+v %v", h, err)
	}
}

// TestFleetUnknownAppEnv: every command that names an APP/ENV refuses one
// Redis holds no record of, in one line, changing nothing.
func TestFleetUnknownAppEnv(t *testing.T) {
	r := newFleetRig(t)
	for _, args := range [][]string{
		{"fleet", "status", "nope/production"},
		{"fleet", "history", "nope/production"},
		{"fleet", "pause", "nope/production", "--reason", "x"},
		{"fleet", "resume", "nope/production"},
		{"fleet", "unbreak", "nope/production", "1.5.0-1", "--reason", "x"},
		{"fleet", "forget", "nope/production", "i-1"},
		{"fleet", "history", "hello/prod"},
	} {
		t.Run(strings.Join(args[:2], " ")+" "+args[2], func(t *testing.T) {
			r.refused(t, "unknown app/env "+args[2]+": Redis holds no record of it", args...)
		})
	}
}
