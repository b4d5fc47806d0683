package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
)

// invocation is one event the runtime stand-in hands out, and how Slack
// answers the message it becomes.
type invocation struct {
	id          string
	timeout     time.Duration // the invocation's deadline, from when it is handed out
	slackStatus int
	retryAfter  string
	slackBody   string
	want        string // "response" or "error": how the function must end it
}

// TestBootstrap runs the built bootstrap binary as Lambda does: against a
// Runtime API (a hand-written stand-in, as no Lambda service runs here,
// speaking the documented 2018-06-01 protocol that aws-lambda-go's runtime
// client uses), with the webhook in an SSM SecureString (stand-in as in
// TestLambdaHandlerFromEnv). Four invocations reach one warm process: Slack
// answers 200, 429 with a Retry-After longer than the invocation has left,
// 400 invalid_payload, and 500. The parameter must be read once.
func TestBootstrap(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Skip(t, "the go command is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command(goTool, "build", "-tags", "lambda.norpc", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bootstrap: %v\n%s", err, out)
	}

	invs := []invocation{
		{id: "req-ok", timeout: 30 * time.Second, slackStatus: 200, slackBody: "ok", want: "response"},
		{id: "req-429", timeout: 10 * time.Second, slackStatus: 429, retryAfter: "60", slackBody: "rate_limited", want: "error"},
		{id: "req-400", timeout: 30 * time.Second, slackStatus: 400, slackBody: "invalid_payload", want: "response"},
		{id: "req-500", timeout: 30 * time.Second, slackStatus: 500, slackBody: "<html>oops</html>", want: "error"},
	}
	payload, err := os.ReadFile(filepath.Join(fixtureDir, "sns", "deploy-halted.json"))
	if err != nil {
		t.Fatal(err)
	}

	var current atomic.Int32 // index of the invocation being served
	var slackPosts sync.Map  // invocation id -> number of posts
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		inv := invs[current.Load()]
		n, _ := slackPosts.LoadOrStore(inv.id, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if !bytes.Contains(body, []byte("ROLLOUT HALTED")) {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		if inv.retryAfter != "" {
			w.Header().Set("Retry-After", inv.retryAfter)
		}
		w.WriteHeader(inv.slackStatus)
		io.WriteString(w, inv.slackBody)
	}))
	defer slack.Close()

	var ssmCalls atomic.Int32
	ssmSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ssmCalls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
			"Name": "/aptfleet/slack-webhook", "Type": "SecureString", "Value": slack.URL + "/services/T0/B0/x"}})
	}))
	defer ssmSrv.Close()

	type outcome struct{ id, kind, body string }
	outcomes := make(chan outcome, 16)
	done := make(chan struct{})
	var next atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		i := int(next.Add(1)) - 1
		if i >= len(invs) {
			select { // no more events: hold the poll, as Lambda does while idle
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		current.Store(int32(i))
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", invs[i].id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(invs[i].timeout).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:111122223333:function:aptfleet-notifier")
		h.Set("Content-Type", "application/json")
		w.Write(payload)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		outcomes <- outcome{r.PathValue("id"), r.PathValue("kind"), string(body)}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		outcomes <- outcome{"init", "error", string(body)}
		w.WriteHeader(http.StatusAccepted)
	})
	runtimeAPI := httptest.NewServer(mux)
	defer runtimeAPI.Close()
	defer close(done)

	var stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stderr = &stderr
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(runtimeAPI.URL, "http://"),
		"SLACK_WEBHOOK_SSM_PARAMETER=/aptfleet/slack-webhook",
		"AWS_ENDPOINT_URL_SSM=" + ssmSrv.URL,
		"AWS_REGION=eu-west-1",
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"HOME=" + t.TempDir(),
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("bootstrap stderr:\n%s", stderr.String())
		}
	}()

	for _, inv := range invs {
		select {
		case o := <-outcomes:
			if o.id != inv.id || o.kind != inv.want {
				t.Errorf("invocation %s ended with %s %s (%s), want %s", inv.id, o.id, o.kind, o.body, inv.want)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("no outcome for invocation %s", inv.id)
		}
	}
	for _, inv := range invs {
		n, ok := slackPosts.Load(inv.id)
		if !ok || n.(*atomic.Int32).Load() != 1 {
			t.Errorf("invocation %s: Slack got %v posts, want exactly 1", inv.id, n)
		}
	}
	if got := ssmCalls.Load(); got != 1 {
		t.Errorf("read the SSM parameter %d times, want once per cold start", got)
	}
	if !strings.Contains(stderr.String(), `"slack_error":"invalid_payload"`) {
		t.Errorf("the 400 was not logged with Slack's error string:\n%s", stderr.String())
	}
}
