package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/slack-go/slack"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/notifier"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// slackServer is an httptest stand-in for a Slack incoming webhook: it
// records every body posted and answers 200 "ok".
type slackServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func newSlackServer(t *testing.T) *slackServer {
	t.Helper()
	s := &slackServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		s.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slackServer) posted() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

func fixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/sns/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/sns: %v", err)
	}
	return files
}

// wantKind is the shape each fixture must be recognised as, from its name.
func wantKind(name string) notifier.Kind {
	switch {
	case strings.HasPrefix(name, "autoscaling-"):
		return notifier.KindAutoScaling
	case strings.HasPrefix(name, "cloudwatch-"):
		return notifier.KindAlarm
	case strings.HasPrefix(name, "deploy-"):
		return notifier.KindDeploy
	default:
		return notifier.KindOther
	}
}

// TestFixtures runs every fixture through aws-lambda-go's own handler path
// into an httptest Slack and compares what was posted with the golden file.
func TestFixtures(t *testing.T) {
	for _, file := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			payload, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev events.SNSEvent
			if err := json.Unmarshal(payload, &ev); err != nil {
				t.Fatalf("fixture is not an SNS event: %v", err)
			}
			for _, rec := range ev.Records {
				if got := notifier.Decode(rec.SNS.Message).Kind; got != wantKind(name) {
					t.Fatalf("decoded as %q, want %q", got, wantKind(name))
				}
			}

			srv := newSlackServer(t)
			h := &notifier.Handler{
				Poster: notifier.NewWebhook(srv.URL, srv.Client(), notifier.DefaultWebhookConfig()),
				Config: notifier.DefaultConfig(),
				Logger: slog.New(slog.DiscardHandler),
			}
			if _, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), payload); err != nil {
				t.Fatalf("invoke: %v", err)
			}
			bodies := srv.posted()
			if len(bodies) != len(ev.Records) {
				t.Fatalf("posted %d messages for %d records", len(bodies), len(ev.Records))
			}
			got := []byte("[\n")
			for i, b := range bodies {
				var msg slack.WebhookMessage
				if err := json.Unmarshal(b, &msg); err != nil {
					t.Fatalf("posted body is not a Slack message: %v\n%s", err, b)
				}
				checkPayload(t, &msg, wantKind(name) == notifier.KindDeploy && strings.Contains(name, "halted"))
				var ind bytes.Buffer
				if err := json.Indent(&ind, bytes.TrimSpace(b), "  ", "  "); err != nil {
					t.Fatal(err)
				}
				if i > 0 {
					got = append(got, ",\n"...)
				}
				got = append(append(got, "  "...), ind.Bytes()...)
			}
			got = append(got, "\n]\n"...)
			golden(t, filepath.Join("testdata", "golden", name+".json"), got)
		})
	}
}

// golden compares got with the file at path, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("payload differs from %s (run with -update if the change is intended)\ngot:\n%s", path, got)
	}
}

// checkPayload asserts what Slack requires of a payload and that no text from
// the message became a mention: the only '<' are console links, and the
// halt mention when mentionAllowed.
func checkPayload(t testing.TB, msg *slack.WebhookMessage, mentionAllowed bool) {
	t.Helper()
	if strings.TrimSpace(msg.Text) == "" {
		t.Errorf("empty fallback text")
	}
	if msg.Blocks == nil || len(msg.Blocks.BlockSet) == 0 {
		t.Fatalf("no top-level blocks")
	}
	var texts []string
	texts = append(texts, msg.Text)
	check := func(blocks []slack.Block) {
		for _, b := range blocks {
			switch b := b.(type) {
			case *slack.HeaderBlock:
				if n := utf8.RuneCountInString(b.Text.Text); n == 0 || n > 150 {
					t.Errorf("header text is %d characters: %q", n, b.Text.Text)
				}
			case *slack.SectionBlock:
				if b.Text == nil && len(b.Fields) == 0 {
					t.Errorf("section with neither text nor fields")
				}
				if b.Text != nil {
					if err := b.Text.Validate(); err != nil {
						t.Errorf("section text: %v: %q", err, b.Text.Text)
					}
					texts = append(texts, b.Text.Text)
				}
				if len(b.Fields) > 10 {
					t.Errorf("%d fields", len(b.Fields))
				}
				for _, f := range b.Fields {
					if n := utf8.RuneCountInString(f.Text); n == 0 || n > 2000 {
						t.Errorf("field is %d characters", n)
					}
					texts = append(texts, f.Text)
				}
			case *slack.ContextBlock:
				for _, e := range b.ContextElements.Elements {
					if tb, ok := e.(*slack.TextBlockObject); ok {
						texts = append(texts, tb.Text)
					}
				}
			default:
				t.Errorf("unexpected block type %T", b)
			}
		}
	}
	check(msg.Blocks.BlockSet)
	if len(msg.Attachments) != 1 || len(msg.Attachments[0].Blocks.BlockSet) == 0 || msg.Attachments[0].Color == "" {
		t.Fatalf("want one coloured attachment with blocks, got %+v", msg.Attachments)
	}
	check(msg.Attachments[0].Blocks.BlockSet)
	for _, s := range texts {
		if !utf8.ValidString(s) {
			t.Errorf("invalid UTF-8 in %q", s)
		}
		for rest := s; ; {
			i := strings.IndexByte(rest, '<')
			if i < 0 {
				break
			}
			rest = rest[i:]
			switch {
			case strings.HasPrefix(rest, "<https://"):
			case mentionAllowed && strings.HasPrefix(rest, "<!here>"):
			default:
				t.Errorf("unescaped '<' in %q", s)
			}
			rest = rest[1:]
		}
	}
}

// TestDeployFixturesMatchSchema keeps the hand-made deploy fixtures in step
// with the schema the puller emits.
func TestDeployFixturesMatchSchema(t *testing.T) {
	for _, file := range fixtures(t) {
		if !strings.HasPrefix(filepath.Base(file), "deploy-") {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev events.SNSEvent
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(strings.NewReader(ev.Records[0].SNS.Message))
			dec.DisallowUnknownFields()
			var d event.Deploy
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("not an event.Deploy: %v", err)
			}
			if d.Source != event.Source || d.Time.IsZero() || d.App == "" {
				t.Fatalf("incomplete event: %+v", d)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	alarmMS := time.UnixMilli(1795166040317).UTC()
	tests := []struct {
		name  string
		msg   string
		kind  notifier.Kind
		check func(t *testing.T, m notifier.Message)
	}{
		{"plain text", "hello\nworld", notifier.KindOther, nil},
		{"empty", "", notifier.KindOther, nil},
		{"json array", `[1,2,3]`, notifier.KindOther, nil},
		{"json null", `null`, notifier.KindOther, nil},
		{"json string", `"ALARM"`, notifier.KindOther, nil},
		{"s3 test event looks like auto scaling", `{"Service":"Amazon S3","Event":"s3:TestEvent"}`, notifier.KindOther, nil},
		{"alarm by shape", `{"AlarmName":"a","NewStateValue":"ALARM","Trigger":{"Threshold":null,"Unit":null,"ThresholdMetricId":"ad1"}}`, notifier.KindAlarm,
			func(t *testing.T, m notifier.Message) {
				if m.Alarm.Trigger.Threshold != nil || m.Alarm.Trigger.ThresholdMetricID != "ad1" {
					t.Errorf("trigger: %+v", m.Alarm.Trigger)
				}
			}},
		{"alarm with string period still decodes", `{"AlarmName":"a","NewStateValue":"OK","Trigger":{"Period":"60","Threshold":5}}`, notifier.KindAlarm,
			func(t *testing.T, m notifier.Message) {
				if m.Alarm.Trigger.Threshold == nil || *m.Alarm.Trigger.Threshold != 5 || m.Alarm.NewStateValue != "OK" {
					t.Errorf("alarm: %+v", m.Alarm)
				}
			}},
		{"invoking alarm with numeric StateChangeTime", `{"Event":"autoscaling:EC2_INSTANCE_LAUNCH","Details":{"InvokingAlarms":[{"AlarmName":"hi","StateChangeTime":1795166040317}]}}`, notifier.KindAutoScaling,
			func(t *testing.T, m notifier.Message) {
				a := m.AutoScaling.Details.InvokingAlarms
				if len(a) != 1 || !a[0].StateChangeTime.Equal(alarmMS) {
					t.Errorf("invoking alarms: %+v", a)
				}
			}},
		{"alarm time in CloudWatch's layout", `{"AlarmName":"a","NewStateValue":"ALARM","StateChangeTime":"2015-06-03T17:43:27.123+0000"}`, notifier.KindAlarm,
			func(t *testing.T, m notifier.Message) {
				if want := time.Date(2015, 6, 3, 17, 43, 27, 123e6, time.UTC); !m.Alarm.StateChangeTime.Equal(want) {
					t.Errorf("time %v, want %v", m.Alarm.StateChangeTime, want)
				}
			}},
		{"auto scaling with Details of the wrong type", `{"Event":"autoscaling:EC2_INSTANCE_TERMINATE","Details":"n/a","AutoScalingGroupName":"g","Progress":"x"}`, notifier.KindAutoScaling,
			func(t *testing.T, m notifier.Message) {
				if m.AutoScaling.AutoScalingGroupName != "g" {
					t.Errorf("group %q", m.AutoScaling.AutoScalingGroupName)
				}
			}},
		{"auto scaling lifecycle message by Service", `{"Service":"AWS Auto Scaling","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING"}`, notifier.KindAutoScaling, nil},
		{"deploy with a bad time", `{"source":"aptfleet.deploy","kind":"halted","app":"hello","time":"yesterday"}`, notifier.KindDeploy,
			func(t *testing.T, m notifier.Message) {
				if m.Deploy.Kind != event.Halted || m.Deploy.App != "hello" || !m.Deploy.Time.IsZero() {
					t.Errorf("deploy: %+v", m.Deploy)
				}
			}},
		{"deploy event from a future puller", `{"source":"aptfleet.deploy","kind":"paused","app":"hello","new_field":{"x":1}}`, notifier.KindDeploy, nil},
		{"other source", `{"source":"aws.health","detail-type":"AWS Health Event"}`, notifier.KindOther, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := notifier.Decode(tt.msg)
			if m.Kind != tt.kind {
				t.Fatalf("kind %q, want %q", m.Kind, tt.kind)
			}
			if m.Raw != tt.msg {
				t.Errorf("Raw not kept")
			}
			if (m.AutoScaling != nil) != (m.Kind == notifier.KindAutoScaling) ||
				(m.Alarm != nil) != (m.Kind == notifier.KindAlarm) ||
				(m.Deploy != nil) != (m.Kind == notifier.KindDeploy) {
				t.Fatalf("kind %q with payloads %v %v %v", m.Kind, m.AutoScaling != nil, m.Alarm != nil, m.Deploy != nil)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
			checkPayload(t, notifier.Render(events.SNSEntity{Message: tt.msg}, m, notifier.DefaultConfig()), m.Kind == notifier.KindDeploy)
		})
	}
}

func TestParseCause(t *testing.T) {
	tests := []struct {
		name     string
		cause    string
		trigger  string
		from, to int
		changed  bool
		steps    int
	}{
		{"alarm", "At 2026-11-20T09:14:00Z a monitor alarm TargetTracking-x-AlarmHigh-1 in state ALARM triggered policy cpu50 changing the desired capacity from 3 to 4.  At 2026-11-20T09:14:04Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 3 to 4.",
			"alarm TargetTracking-x-AlarmHigh-1 (ALARM) triggered policy cpu50", 3, 4, true, 2},
		{"user constraints", "At 2016-09-16T12:37:09Z a user request update of AutoScalingGroup constraints to min: 0, max: 0, desired: 0 changing the desired capacity from 1 to 0.  At 2016-09-16T12:37:38Z an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from 1 to 0.  At 2016-09-16T12:37:39Z instance i-00000000 was selected for termination.",
			"a user changed the group's size (min: 0, max: 0, desired: 0)", 1, 0, true, 3},
		{"user desired", "At 2026-11-20T08:02:08Z a user request explicitly set group desired capacity changing the desired capacity from 2 to 3.",
			"a user set the desired capacity", 2, 3, true, 1},
		{"scheduled", "At 2026-11-20T10:31:02Z a scheduled action update of AutoScalingGroup constraints to min: 4, max: 12, desired: 6 changing the desired capacity from 4 to 6.",
			"a scheduled action (min: 4, max: 12, desired: 6)", 4, 6, true, 1},
		{"ec2 health", "At 2026-11-20T11:00:00Z an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.",
			"an EC2 health check (the instance was stopped, terminated or impaired)", 0, 0, false, 1},
		{"elb health", "At 2026-11-20T11:47:12Z an instance was taken out of service in response to an ELB system health check failure.",
			"a load balancer health check failure", 0, 0, false, 1},
		{"rebalance", "At 2026-11-20T11:00:00Z an instance was launched to aid in balancing the group's zones.",
			"Availability Zone rebalancing", 0, 0, false, 1},
		{"only the generic step", "At 2026-11-20T11:00:00Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 1 to 2.",
			"", 1, 2, true, 1},
		{"no time", "something new happened", "", 0, 0, false, 1},
		{"empty", "", "", 0, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := notifier.ParseCause(tt.cause)
			if c.Trigger != tt.trigger || c.From != tt.from || c.To != tt.to || c.Changed != tt.changed || len(c.Steps) != tt.steps {
				t.Errorf("got trigger %q capacity %d->%d (%v) %d steps; want %q %d->%d (%v) %d steps\n%+v",
					c.Trigger, c.From, c.To, c.Changed, len(c.Steps), tt.trigger, tt.from, tt.to, tt.changed, tt.steps, c.Steps)
			}
			for _, st := range c.Steps {
				if strings.HasPrefix(st.Text, "At ") || strings.HasSuffix(st.Text, ".") {
					t.Errorf("step not cleaned: %q", st.Text)
				}
			}
		})
	}
}

// allText is every text of a payload, joined.
func allText(t *testing.T, msg *slack.WebhookMessage) string {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			sb.WriteString(v + "\n")
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return sb.String()
}

func TestRenderDeploy(t *testing.T) {
	base := event.New(event.Halted, "hello", "production", "1.4.0-1", "i-1", time.Date(2026, 11, 20, 13, 0, 0, 0, time.UTC))
	base.Reason = "health check failed <!channel> & <@U123>"
	raw, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		kind        event.Kind
		cfg         notifier.Config
		wantMention string
		wantTitle   string
		wantColor   string
	}{
		{"halted stands out", event.Halted, notifier.DefaultConfig(), "<!here>", "ROLLOUT HALTED", "#d00000"},
		{"halted without a mention", event.Halted, notifier.Config{}, "", "ROLLOUT HALTED", "#d00000"},
		{"failed mentions nobody", event.Failed, notifier.DefaultConfig(), "", "failed on i-1", "#d00000"},
		{"succeeded", event.Succeeded, notifier.DefaultConfig(), "", "is live on i-1", "#2eb886"},
		{"rolled back", event.RolledBack, notifier.DefaultConfig(), "", "rolled back to the previous version", "#daa038"},
		{"started", event.Started, notifier.DefaultConfig(), "", "Deploying hello 1.4.0-1", "#439fe0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgText := strings.Replace(string(raw), `"kind":"halted"`, `"kind":"`+string(tt.kind)+`"`, 1)
			m := notifier.Decode(msgText)
			if m.Kind != notifier.KindDeploy || m.Deploy.Kind != tt.kind {
				t.Fatalf("decoded %+v", m)
			}
			p := notifier.Render(events.SNSEntity{Message: msgText}, m, tt.cfg)
			header := p.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text
			if !strings.Contains(header, tt.wantTitle) {
				t.Errorf("header %q does not say %q", header, tt.wantTitle)
			}
			if p.Attachments[0].Color != tt.wantColor {
				t.Errorf("colour %s, want %s", p.Attachments[0].Color, tt.wantColor)
			}
			text := allText(t, p)
			if tt.wantMention != "" {
				if !strings.HasPrefix(p.Text, tt.wantMention+" ") || len(p.Blocks.BlockSet) != 2 {
					t.Errorf("halt mention missing: text %q, %d top blocks", p.Text, len(p.Blocks.BlockSet))
				}
			} else if strings.Contains(text, "<!") {
				t.Errorf("unexpected mention in %q", text)
			}
			if strings.Contains(text, "<!channel>") || strings.Contains(text, "<@U123>") {
				t.Errorf("reason text became a mention:\n%s", text)
			}
			if !strings.Contains(text, "&lt;!channel&gt; &amp; &lt;@U123&gt;") {
				t.Errorf("reason not shown escaped:\n%s", text)
			}
			checkPayload(t, p, tt.wantMention != "")
		})
	}
}

func TestRenderLongMessageIsClipped(t *testing.T) {
	long := strings.Repeat("é&<", 5000)
	for _, msg := range []string{
		long,
		`{"AlarmName":"` + long + `","NewStateValue":"ALARM","NewStateReason":"` + long + `"}`,
		`{"Event":"autoscaling:EC2_INSTANCE_LAUNCH_ERROR","AutoScalingGroupName":"` + long + `","StatusMessage":"` + long + `","Cause":"` + long + `"}`,
	} {
		m := notifier.Decode(msg)
		checkPayload(t, notifier.Render(events.SNSEntity{Message: msg, Subject: long}, m, notifier.DefaultConfig()), false)
	}
}
