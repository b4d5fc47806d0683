package notifier_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/notifier"
)

// FuzzDecode feeds arbitrary messages to the decoder and the renderer: no
// panic, and every payload is one Slack accepts with no injected mention.
// The seed corpus is every fixture's Message plus a few edge cases.
func FuzzDecode(f *testing.F) {
	for _, file := range fixtures(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var ev events.SNSEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		for _, rec := range ev.Records {
			f.Add(rec.SNS.Message, rec.SNS.Subject)
		}
	}
	for _, s := range []string{"", "null", "[]", "{}", `"x"`, "\xff\xfe", `{"source":"aptfleet.deploy"}`,
		`{"Event":"autoscaling:","Details":{"InvokingAlarms":[{"StateChangeTime":1e300}]}}`,
		`{"AlarmName":"","NewStateValue":"ALARM","Trigger":{"Statistic":"é","Metrics":[{}]}}`,
		`{"Event":"autoscaling:EC2_INSTANCE_LAUNCH","Cause":"At 2026-01-01T00:00:00Z desired capacity from 99999999999999999999 to 1"}`} {
		f.Add(s, "<!channel>")
	}
	f.Fuzz(func(t *testing.T, msg, subject string) {
		m := notifier.Decode(msg)
		if m.Raw != msg {
			t.Fatalf("Raw not kept")
		}
		if (m.AutoScaling != nil) != (m.Kind == notifier.KindAutoScaling) ||
			(m.Alarm != nil) != (m.Kind == notifier.KindAlarm) ||
			(m.Deploy != nil) != (m.Kind == notifier.KindDeploy) {
			t.Fatalf("kind %q does not match its payload", m.Kind)
		}
		rec := events.SNSEntity{Message: msg, Subject: subject, TopicArn: "arn:aws:sns:eu-west-1:111122223333:t"}
		p := notifier.Render(rec, m, notifier.DefaultConfig())
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("payload does not encode: %v", err)
		}
		checkPayload(t, p, m.Kind == notifier.KindDeploy && m.Deploy.Kind == event.Halted)
	})
}
