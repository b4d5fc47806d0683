package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
)

const fixtureDir = "../../notifier/testdata"

// slackStandIn is an httptest Slack webhook: it answers status and body and
// records what was posted.
type slackStandIn struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newSlack(t *testing.T, status int, body string) *slackStandIn {
	t.Helper()
	s := &slackStandIn{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slackStandIn) posted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// TestRender checks `notifier render` against the notifier's golden payloads.
func TestRender(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "sns", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"render", file}, &stdout, &stderr); err != nil {
				t.Fatalf("render: %v", err)
			}
			var got []any
			dec := json.NewDecoder(&stdout)
			for dec.More() {
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Fatalf("output is not a JSON stream: %v", err)
				}
				got = append(got, v)
			}
			b, err := os.ReadFile(filepath.Join(fixtureDir, "golden", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var want []any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("render output differs from the golden payload %s.json", name)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notJSON := write("text.json", "hello")
	noRecords := write("norecords.json", `{"Records":[]}`)
	wrongShape := write("wrong.json", `{"Records":"x"}`)
	good := filepath.Join(fixtureDir, "sns", "deploy-halted.json")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"render", filepath.Join(dir, "nope.json")}, "nope.json: no such file"},
		{"not JSON", []string{"render", notJSON}, "text.json: not an SNS event"},
		{"no records", []string{"render", noRecords}, "norecords.json: not an SNS event: no Records"},
		{"records of the wrong type", []string{"render", wrongShape}, "wrong.json: not an SNS event"},
		{"no file", []string{"render"}, "accepts 1 arg"},
		{"send without webhook", []string{"send", good}, "--webhook URL is required"},
		{"send with a bad webhook", []string{"send", "--webhook", "hooks.slack.com/x", good}, "--webhook: not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line containing %q", err, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("wrote %q on failure", stdout.String())
			}
		})
	}
}

func TestSend(t *testing.T) {
	file := filepath.Join(fixtureDir, "sns", "autoscaling-launch-alarm.json")
	t.Run("200", func(t *testing.T) {
		slack := newSlack(t, http.StatusOK, "ok")
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"send", "--webhook", slack.URL, file}, &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
		if got := slack.posted(); len(got) != 1 || !strings.Contains(got[0], "Instance launched: hello-production") {
			t.Fatalf("posted %q", got)
		}
		if stdout.String() != "sent 1 message(s)\n" {
			t.Errorf("stdout %q", stdout.String())
		}
	})
	t.Run("400 is an error naming Slack's", func(t *testing.T) {
		slack := newSlack(t, http.StatusBadRequest, "invalid_payload")
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"send", "--webhook", slack.URL, file}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "invalid_payload") {
			t.Fatalf("error %v, want Slack's invalid_payload", err)
		}
	})
}

// ssmStandIn is a hand-written stand-in for Parameter Store (no SSM runs
// here) speaking the JSON protocol of GetParameter, so the real SDK client,
// configured from the environment as in Lambda, makes the call.
func ssmStandIn(t *testing.T, name, value string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name           string
			WithDecryption bool
		}
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" || in.Name != name || !in.WithDecryption {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"ParameterNotFound","message":"not found"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{"Name": name, "Type": "SecureString", "Value": value}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestLambdaHandlerFromEnv builds the Lambda handler from its environment
// (SSM parameter, or plain URL) and invokes it the way the runtime does.
func TestLambdaHandlerFromEnv(t *testing.T) {
	payload, err := os.ReadFile(filepath.Join(fixtureDir, "sns", "deploy-halted.json"))
	if err != nil {
		t.Fatal(err)
	}
	slack := newSlack(t, http.StatusOK, "ok")
	ssm := ssmStandIn(t, "/aptfleet/slack-webhook", slack.URL+"/services/T0/B0/x")
	t.Setenv("AWS_ENDPOINT_URL_SSM", ssm.URL)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	tests := []struct {
		name        string
		env         map[string]string
		wantErr     string
		wantMention bool
	}{
		{name: "ssm parameter", env: map[string]string{envSSMParameter: "/aptfleet/slack-webhook"}, wantMention: true},
		{name: "plain url, no mention", env: map[string]string{envWebhookURL: slack.URL, envHaltMention: ""}},
		{name: "missing ssm parameter", env: map[string]string{envSSMParameter: "/aptfleet/other"}, wantErr: "read ssm parameter /aptfleet/other"},
		{name: "bad plain url", env: map[string]string{envWebhookURL: "not a url"}, wantErr: "SLACK_WEBHOOK_URL: not an http(s) URL"},
		{name: "nothing set", env: map[string]string{}, wantErr: "no Slack webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			before := len(slack.posted())
			h, err := newLambdaHandler(context.Background(), lookup, slog.New(slog.DiscardHandler))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), payload); err != nil {
				t.Fatal(err)
			}
			got := slack.posted()
			if len(got) != before+1 {
				t.Fatalf("posted %d messages, want 1", len(got)-before)
			}
			if strings.Contains(got[before], "<!here>") != tt.wantMention {
				t.Errorf("mention in %s: want %v", got[before], tt.wantMention)
			}
		})
	}
}
