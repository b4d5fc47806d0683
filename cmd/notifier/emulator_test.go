package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/awsstub"
)

// The credentials the function's role would give it; the Parameter Store
// stand-in checks the SigV4 signature made with them.
const (
	lambdaRegion = "eu-west-1"
	lambdaKeyID  = "AKIDLAMBDAEXAMPLE"
	lambdaSecret = "lambda/secret/EXAMPLEKEY"
	webhookParam = "/aptfleet/slack-webhook"
)

// buildLambda builds the function exactly as `make lambda` does (the
// Makefile's own recipe, for this machine's architecture) and unzips the
// zip's bootstrap into a directory of its own, as Lambda does.
func buildLambda(t testing.TB) string {
	t.Helper()
	testenv.NeedTools(t, "make", "go", "zip", "aws-lambda-rie")
	out := t.TempDir()
	arch := runtime.GOARCH
	cmd := exec.Command("make", "--no-print-directory", "-C", "../..", "lambda", "LAMBDA_DIR="+out, "LAMBDA_ARCHS="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make lambda: %v\n%s", err, b)
	}
	zr, err := zip.OpenReader(filepath.Join(out, "notifier_linux_"+arch+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	task := t.TempDir()
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		t.Fatalf("zip holds %d entries, want only bootstrap", len(zr.File))
	}
	f := zr.File[0]
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dst, err := os.OpenFile(filepath.Join(task, "bootstrap"), os.O_CREATE|os.O_WRONLY, f.Mode())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, rc); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return task
}

// emulator is AWS's Lambda Runtime Interface Emulator (aws-lambda-rie, the
// runtime API server of AWS's base images) running the function's bootstrap.
type emulator struct {
	url string
	cmd *exec.Cmd
	log *testenv.Buffer
}

// startEmulator runs aws-lambda-rie in the task directory with env as the
// function's environment, and waits until it listens.
func startEmulator(t testing.TB, task string, env []string) *emulator {
	t.Helper()
	testenv.NeedTools(t, "aws-lambda-rie")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	runtimeAPI := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) // the default, 127.0.0.1:9001, is one per machine
	e := &emulator{url: "http://" + addr + "/2015-03-31/functions/function/invocations", log: &testenv.Buffer{}}
	e.cmd = exec.Command("aws-lambda-rie", "--runtime-api-address", runtimeAPI,
		"--runtime-interface-emulator-address", addr, "./bootstrap")
	e.cmd.Dir = task
	e.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.cmd.Process.Kill()
		e.cmd.Wait()
		if t.Failed() {
			t.Logf("emulator output:\n%s", e.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-lambda-rie does not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// invoke posts one event to the emulator's invoke endpoint, as the SNS
// integration (or `aws lambda invoke`) does, and returns the status and the
// body: the handler's result, or its error as {"errorMessage","errorType"}.
func (e *emulator) invoke(t testing.TB, payload []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(e.url, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// report is one invocation's REPORT line.
type report struct {
	requestID string
	init      float64 // ms; set only on the invocation that cold-started
	duration  float64 // ms
}

var (
	reportLine = regexp.MustCompile(`REPORT RequestId: (\S+)\s+(?:Init Duration: ([0-9.]+) ms\s+)?Duration: ([0-9.]+) ms`)
	initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
)

// waitReports returns the REPORT lines once there are n of them (the
// emulator writes each just after it answers the invoke), or what there is
// after a few seconds.
func (e *emulator) waitReports(n int) []report {
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs := e.reports()
		if len(rs) >= n || time.Now().After(deadline) {
			return rs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reports parses the REPORT lines the emulator wrote so far.
func (e *emulator) reports() []report {
	var rs []report
	for _, m := range reportLine.FindAllStringSubmatch(e.log.String(), -1) {
		r := report{requestID: m[1]}
		r.init, _ = strconv.ParseFloat(m[2], 64)
		r.duration, _ = strconv.ParseFloat(m[3], 64)
		rs = append(rs, r)
	}
	return rs
}

// initDurations returns the init phases' durations (ms), from the emulator's
// INIT REPORT lines: the runtime's start up to its first poll for an event,
// which includes reading the webhook from SSM.
func (e *emulator) initDurations() []float64 {
	var ds []float64
	for _, m := range initReport.FindAllStringSubmatch(e.log.String(), -1) {
		d, _ := strconv.ParseFloat(m[1], 64)
		ds = append(ds, d)
	}
	return ds
}

// functionLogs returns the function's own JSON log records.
func (e *emulator) functionLogs() []map[string]any {
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.log.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] != nil {
			recs = append(recs, rec)
		}
	}
	return recs
}

// lambdaEnv is the function's environment as Terraform's notifier module
// sets it, with AWS's endpoint for SSM pointed at the stand-in.
func lambdaEnv(ssmURL string) []string {
	return []string{
		"SLACK_WEBHOOK_SSM_PARAMETER=" + webhookParam,
		"AWS_ENDPOINT_URL_SSM=" + ssmURL,
		"AWS_REGION=" + lambdaRegion,
		"AWS_ACCESS_KEY_ID=" + lambdaKeyID,
		"AWS_SECRET_ACCESS_KEY=" + lambdaSecret,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// slackWebhook is an httptest Slack incoming webhook answering with the
// status set last, recording every body.
type slackWebhook struct {
	status atomic.Int32
	mu     sync.Mutex
	bodies [][]byte
	url    string
}

func newSlackWebhook(t testing.TB) *slackWebhook {
	s := &slackWebhook{}
	s.status.Store(http.StatusOK)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		s.mu.Unlock()
		code := int(s.status.Load())
		w.WriteHeader(code)
		if code == http.StatusOK {
			io.WriteString(w, "ok")
		} else {
			io.WriteString(w, "<html>upstream error</html>")
		}
	}))
	s.url = srv + "/services/T0000/B0000/XXXX"
	return s
}

func (s *slackWebhook) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bodies
	s.bodies = nil
	return b
}

func newServer(t testing.TB, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// TestUnderEmulator runs the bootstrap that `make lambda` zips under AWS's
// Lambda runtime emulator and invokes it through the emulator's invoke
// endpoint with every SNS fixture. The cold start reads the webhook from a
// SecureString (the Parameter Store stand-in checks the SigV4 signature),
// once for all invocations; Slack receives each fixture's golden payloads;
// a 5xx from Slack fails the invocation (the emulator returns the error, so
// SNS's Lambda integration would retry) and the warm function then carries
// on; a missing parameter fails the cold start.
func TestUnderEmulator(t *testing.T) {
	task := buildLambda(t)
	slack := newSlackWebhook(t)
	ssm := awsstub.NewParameterStore(t, lambdaRegion, lambdaKeyID, lambdaSecret, map[string]string{webhookParam: slack.url})
	emu := startEmulator(t, task, lambdaEnv(ssm.URL))

	files, err := filepath.Glob(filepath.Join(fixtureDir, "sns", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		payload, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		status, body := emu.invoke(t, payload)
		if status != http.StatusOK || string(body) != "null" {
			t.Errorf("%s: invoke answered %d %s, want 200 null", name, status, body)
			continue
		}
		golden, err := os.ReadFile(filepath.Join(fixtureDir, "golden", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var want, got []any
		if err := json.Unmarshal(golden, &want); err != nil {
			t.Fatal(err)
		}
		for _, b := range slack.take() {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: Slack got a body that is not JSON: %s", name, b)
			}
			got = append(got, v)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Slack got %d payloads differing from the golden %s.json (%d)", name, len(got), name, len(want))
		}
	}

	t.Run("slack 5xx fails the invocation", func(t *testing.T) {
		payload, err := os.ReadFile(filepath.Join(fixtureDir, "sns", "deploy-halted.json"))
		if err != nil {
			t.Fatal(err)
		}
		slack.status.Store(http.StatusInternalServerError)
		status, body := emu.invoke(t, payload)
		var fnErr struct{ ErrorMessage, ErrorType string }
		if err := json.Unmarshal(body, &fnErr); err != nil || !strings.Contains(fnErr.ErrorMessage, "slack answered 500") {
			t.Errorf("invoke with Slack answering 500: %d %s, want the function's error naming Slack's 500", status, body)
		}
		if n := len(slack.take()); n != 1 {
			t.Errorf("Slack got %d posts for one record, want 1 (the retry is Lambda's)", n)
		}
		slack.status.Store(http.StatusOK)
		if status, body := emu.invoke(t, payload); status != http.StatusOK || string(body) != "null" {
			t.Errorf("the retry answered %d %s, want 200 null", status, body)
		}
		slack.take()
	})

	if calls := ssm.Calls(); len(calls) != 1 || calls[0] != webhookParam {
		t.Errorf("SSM served %q (rejected %q), want %s once: the webhook is read at cold start only", calls, ssm.Rejections(), webhookParam)
	}
	if inits := emu.initDurations(); len(inits) != 1 {
		t.Errorf("%d init phases, want 1 (one cold start)", len(inits))
	}
	if rs := emu.waitReports(len(files) + 2); len(rs) != len(files)+2 {
		t.Errorf("%d REPORT lines, want one per invocation (%d)", len(rs), len(files)+2)
	}
	var sent int
	for _, rec := range emu.functionLogs() {
		if rec["msg"] == "sent to slack" && rec["message_id"] != nil && rec["kind"] != nil {
			sent++
		}
	}
	if sent == 0 {
		t.Error("the function wrote no JSON log record for a delivered message")
	}

	t.Run("missing parameter fails the cold start", func(t *testing.T) {
		env := lambdaEnv(ssm.URL)
		env[0] = "SLACK_WEBHOOK_SSM_PARAMETER=/aptfleet/absent"
		emu := startEmulator(t, task, env)
		payload, err := os.ReadFile(filepath.Join(fixtureDir, "sns", "cloudwatch-alarm.json"))
		if err != nil {
			t.Fatal(err)
		}
		if status, body := emu.invoke(t, payload); status == http.StatusOK {
			t.Errorf("invoke without the parameter answered %d %s, want a failed invocation", status, body)
		}
		if !strings.Contains(emu.log.String(), "read ssm parameter /aptfleet/absent") {
			t.Errorf("the cold start's error does not name the parameter")
		}
		if len(slack.take()) != 0 {
			t.Error("Slack got a message from a function that could not start")
		}
	})
}

// stop ends the emulator and its runtime.
func (e *emulator) stop() {
	e.cmd.Process.Kill()
	e.cmd.Wait()
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// BenchmarkEmulatorColdStart starts the function under the emulator for
// every iteration and invokes it once with a CloudWatch alarm: init-ms is
// the emulator's INIT REPORT (runtime start to its first poll, the SSM read
// included), invoke-ms the first invocation's REPORT Duration.
func BenchmarkEmulatorColdStart(b *testing.B) {
	task := buildLambda(b)
	slack := newSlackWebhook(b)
	ssm := awsstub.NewParameterStore(b, lambdaRegion, lambdaKeyID, lambdaSecret, map[string]string{webhookParam: slack.url})
	payload, err := os.ReadFile(filepath.Join(fixtureDir, "sns", "cloudwatch-alarm.json"))
	if err != nil {
		b.Fatal(err)
	}
	var inits, invokes []float64
	b.ResetTimer()
	for range b.N {
		emu := startEmulator(b, task, lambdaEnv(ssm.URL))
		if status, body := emu.invoke(b, payload); status != http.StatusOK {
			b.Fatalf("invoke: %d %s", status, body)
		}
		rs := emu.waitReports(1)
		emu.stop()
		if len(rs) != 1 || len(emu.initDurations()) != 1 {
			b.Fatalf("want one REPORT and one INIT REPORT line:\n%s", emu.log.String())
		}
		inits = append(inits, emu.initDurations()[0])
		invokes = append(invokes, rs[0].duration)
	}
	b.StopTimer()
	b.ReportMetric(mean(inits), "init-ms")
	b.ReportMetric(mean(invokes), "invoke-ms")
}

// BenchmarkEmulatorInvoke invokes one warm function under the emulator with
// a CloudWatch alarm: invoke-ms is the mean REPORT Duration, ns/op the
// caller's round trip through the invoke endpoint.
func BenchmarkEmulatorInvoke(b *testing.B) {
	task := buildLambda(b)
	slack := newSlackWebhook(b)
	ssm := awsstub.NewParameterStore(b, lambdaRegion, lambdaKeyID, lambdaSecret, map[string]string{webhookParam: slack.url})
	payload, err := os.ReadFile(filepath.Join(fixtureDir, "sns", "cloudwatch-alarm.json"))
	if err != nil {
		b.Fatal(err)
	}
	emu := startEmulator(b, task, lambdaEnv(ssm.URL))
	if status, body := emu.invoke(b, payload); status != http.StatusOK { // the cold start
		b.Fatalf("invoke: %d %s", status, body)
	}
	emu.waitReports(1)
	b.ResetTimer()
	for range b.N {
		if status, body := emu.invoke(b, payload); status != http.StatusOK {
			b.Fatalf("invoke: %d %s", status, body)
		}
	}
	b.StopTimer()
	rs := emu.waitReports(b.N + 1)
	var ds []float64
	for _, r := range rs[1:] {
		ds = append(ds, r.duration)
	}
	b.ReportMetric(mean(ds), "invoke-ms")
	slack.take()
}
