package sns

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/aptfleet/aptfleet/internal/event"
)

// The shape the agent declares (puller.Publisher).
var _ interface {
	Publish(ctx context.Context, e event.Deploy) error
} = (*Publisher)(nil)

const topic = "arn:aws:sns:eu-west-1:123456789012:aptfleet-events"

// fakeSNS is a hand-written stand-in for the SNS query API (Action=Publish
// only): SNS cannot run here. It keeps every published form and answers
// NotFound for any other topic.
type fakeSNS struct {
	mu     sync.Mutex
	topics map[string]bool
	got    []url.Values
}

func (f *fakeSNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "Publish" {
		http.Error(w, "bad request", 400)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	if !f.topics[r.Form.Get("TopicArn")] {
		w.WriteHeader(404)
		fmt.Fprint(w, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error><RequestId>r1</RequestId></ErrorResponse>`)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, r.Form)
	n := len(f.got)
	f.mu.Unlock()
	fmt.Fprintf(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-%d</MessageId></PublishResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></PublishResponse>`, n)
}

func client(t *testing.T, f *fakeSNS) *sns.Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return sns.New(sns.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.AnonymousCredentials{}, HTTPClient: srv.Client()})
}

// attrs decodes the form's MessageAttributes.entry.N.* into name -> value.
func attrs(form url.Values) map[string]string {
	m := map[string]string{}
	for i := 1; ; i++ {
		p := fmt.Sprintf("MessageAttributes.entry.%d.", i)
		name := form.Get(p + "Name")
		if name == "" {
			return m
		}
		m[name] = form.Get(p+"Value.DataType") + ":" + form.Get(p+"Value.StringValue")
	}
}

func TestPublish(t *testing.T) {
	at := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	halted := event.New(event.Halted, "hello", "staging", "1.4.0-1", "i-0abc", at)
	halted.Previous, halted.Reason, halted.Total, halted.Failed = "1.3.0-1", "health: unhealthy: 503", 12, 1
	tests := []struct {
		name      string
		topic     string
		e         event.Deploy
		wantSubj  string
		wantAttrs map[string]string
		wantGroup string
	}{
		{
			name: "halted", topic: topic, e: halted,
			wantSubj:  "aptfleet hello/staging 1.4.0-1 halted on i-0abc",
			wantAttrs: map[string]string{"source": "String:aptfleet.deploy", "kind": "String:halted", "app": "String:hello", "env": "String:staging"},
		},
		{
			name: "rolled back on a FIFO topic", topic: topic + ".fifo",
			e:         event.New(event.RolledBack, "hello", "production", "2.0-1", "i-0def", at),
			wantSubj:  "aptfleet hello/production 2.0-1 rolled back on i-0def",
			wantAttrs: map[string]string{"source": "String:aptfleet.deploy", "kind": "String:rolled_back", "app": "String:hello", "env": "String:production"},
			wantGroup: "hello/production",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSNS{topics: map[string]bool{tt.topic: true}}
			p, err := New(client(t, f), tt.topic)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Publish(context.Background(), tt.e); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if len(f.got) != 1 {
				t.Fatalf("%d publishes, want 1", len(f.got))
			}
			form := f.got[0]
			var back event.Deploy
			if err := json.Unmarshal([]byte(form.Get("Message")), &back); err != nil {
				t.Fatalf("message is not JSON: %v: %s", err, form.Get("Message"))
			}
			if back != tt.e {
				t.Errorf("message decodes to\n%+v\nwant\n%+v", back, tt.e)
			}
			if form.Get("Subject") != tt.wantSubj {
				t.Errorf("subject %q, want %q", form.Get("Subject"), tt.wantSubj)
			}
			if got := attrs(form); fmt.Sprint(got) != fmt.Sprint(tt.wantAttrs) {
				t.Errorf("attributes %v, want %v", got, tt.wantAttrs)
			}
			if form.Get("MessageGroupId") != tt.wantGroup {
				t.Errorf("MessageGroupId %q, want %q", form.Get("MessageGroupId"), tt.wantGroup)
			}
			if tt.wantGroup != "" && form.Get("MessageDeduplicationId") == "" {
				t.Error("FIFO publish without a deduplication id")
			}
		})
	}
}

func TestPublishErrors(t *testing.T) {
	f := &fakeSNS{topics: map[string]bool{}}
	p, err := New(client(t, f), topic)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(context.Background(), event.New(event.Started, "hello", "staging", "1", "h", time.Now()))
	if err == nil || !strings.Contains(err.Error(), "publish started event to "+topic) || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("Publish to a missing topic = %v", err)
	}
	for _, bad := range []string{"", "aptfleet-events", "arn:aws:sqs:eu-west-1:1:q", "arn:aws:sns:eu-west-1:1:"} {
		if _, err := New(nil, bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
}

func TestSubject(t *testing.T) {
	long := event.New(event.Failed, strings.Repeat("a", 60), "staging", strings.Repeat("9", 40), "i-1", time.Now())
	for _, tt := range []struct {
		name string
		e    event.Deploy
		want string
	}{
		{"short", event.New(event.Succeeded, "hello", "staging", "1.4.0-1", "i-1", time.Now()), "aptfleet hello/staging 1.4.0-1 succeeded on i-1"},
		{"non-ascii host", event.New(event.Started, "hello", "staging", "1", "hôte", time.Now()), "aptfleet hello/staging 1 started on h?te"},
		{"too long", long, "aptfleet " + strings.Repeat("a", 60) + "/staging " + strings.Repeat("9", 19) + "..."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Subject(tt.e)
			if got != tt.want || len(got) > 100 {
				t.Fatalf("Subject = %q (%d), want %q", got, len(got), tt.want)
			}
		})
	}
}
