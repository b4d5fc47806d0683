package notifier

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/slack-go/slack"
)

// reply is one answer of the httptest Slack.
type reply struct {
	status     int
	retryAfter string
	body       string
}

// scriptedSlack answers the i-th post with replies[i] (the last one repeats)
// the way Slack's webhook endpoint does: a short text body.
func scriptedSlack(t *testing.T, replies ...reply) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		i := int(n.Add(1)) - 1
		if i >= len(replies) {
			i = len(replies) - 1
		}
		rp := replies[i]
		if rp.retryAfter != "" {
			w.Header().Set("Retry-After", rp.retryAfter)
		}
		if strings.HasPrefix(rp.body, "<") {
			w.Header().Set("Content-Type", "text/html")
		}
		w.WriteHeader(rp.status)
		io.WriteString(w, rp.body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func snsEntity(msg string) events.SNSEntity {
	return events.SNSEntity{Message: msg, TopicArn: "arn:aws:sns:eu-west-1:111122223333:aptfleet-events"}
}

func testMessage() *slack.WebhookMessage {
	return Render(snsEntity("hello"), Decode("hello"), DefaultConfig())
}

func TestWebhookPost(t *testing.T) {
	// The webhook's clock is pinned to a whole second, so an HTTP-date
	// Retry-After (second resolution) reads back exactly.
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name      string
		replies   []reply
		timeout   time.Duration // context deadline; 0 for none
		wantPosts int32
		wantWaits []time.Duration
		// wantStatus is the *Error's status, 0 for success.
		wantStatus    int
		wantRetryable bool
		wantSlackErr  string
		wantNoTime    bool
	}{
		{name: "200", replies: []reply{{200, "", "ok"}}, wantPosts: 1},
		{name: "429 waits Retry-After then succeeds",
			replies:   []reply{{429, "3", "rate_limited"}, {429, "", "rate_limited"}, {200, "", "ok"}},
			timeout:   time.Minute,
			wantPosts: 3, wantWaits: []time.Duration{3 * time.Second, time.Second}},
		{name: "429 with an HTTP-date Retry-After",
			replies:   []reply{{429, now.Add(90 * time.Second).UTC().Format(http.TimeFormat), "rate_limited"}, {200, "", "ok"}},
			wantPosts: 2, wantWaits: []time.Duration{90 * time.Second}},
		{name: "429 beyond the deadline fails at once",
			replies: []reply{{429, "30", "rate_limited"}},
			timeout: 10 * time.Second, wantPosts: 1,
			wantStatus: 429, wantRetryable: true, wantSlackErr: "rate_limited", wantNoTime: true},
		{name: "429 inside the reserve fails at once",
			replies: []reply{{429, "9.5", "rate_limited"}},
			timeout: 10 * time.Second, wantPosts: 1,
			wantStatus: 429, wantRetryable: true, wantNoTime: true},
		{name: "429 forever gives up after MaxAttempts",
			replies:   []reply{{429, "1", "rate_limited"}},
			wantPosts: 5, wantWaits: []time.Duration{time.Second, time.Second, time.Second, time.Second},
			wantStatus: 429, wantRetryable: true},
		{name: "400 invalid_payload is not retried",
			replies: []reply{{400, "", "invalid_payload"}}, wantPosts: 1,
			wantStatus: 400, wantSlackErr: "invalid_payload"},
		{name: "404 no_service is not retried",
			replies: []reply{{404, "", "no_service"}}, wantPosts: 1,
			wantStatus: 404, wantSlackErr: "no_service"},
		{name: "410 channel_is_archived is not retried",
			replies: []reply{{410, "", "channel_is_archived"}}, wantPosts: 1,
			wantStatus: 410, wantSlackErr: "channel_is_archived"},
		{name: "500 is retryable and not waited on",
			replies: []reply{{500, "", "<html><body>oops</body></html>"}}, wantPosts: 1,
			wantStatus: 500, wantRetryable: true, wantSlackErr: "Internal Server Error"},
		{name: "503 is retryable",
			replies: []reply{{503, "", ""}}, wantPosts: 1,
			wantStatus: 503, wantRetryable: true, wantSlackErr: "Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, posts := scriptedSlack(t, tt.replies...)
			w := NewWebhook(srv.URL, srv.Client(), DefaultWebhookConfig())
			w.now = func() time.Time { return now }
			var waits []time.Duration
			w.wait = func(ctx context.Context, d time.Duration) error {
				waits = append(waits, d.Round(time.Second))
				return nil
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			err := w.Post(ctx, testMessage())
			if got := posts.Load(); got != tt.wantPosts {
				t.Errorf("%d posts, want %d", got, tt.wantPosts)
			}
			if len(waits) != len(tt.wantWaits) {
				t.Errorf("waited %v, want %v", waits, tt.wantWaits)
			} else {
				for i := range waits {
					if waits[i] != tt.wantWaits[i] {
						t.Errorf("waited %v, want %v", waits, tt.wantWaits)
					}
				}
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("Post: %v", err)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *notifier.Error", err)
			}
			if se.StatusCode != tt.wantStatus || se.Retryable() != tt.wantRetryable {
				t.Errorf("got %d retryable=%v, want %d retryable=%v", se.StatusCode, se.Retryable(), tt.wantStatus, tt.wantRetryable)
			}
			if tt.wantSlackErr != "" && se.Message != tt.wantSlackErr {
				t.Errorf("slack error %q, want %q", se.Message, tt.wantSlackErr)
			}
			if errors.Is(err, ErrNoTimeLeft) != tt.wantNoTime {
				t.Errorf("ErrNoTimeLeft: %v, want %v (%v)", errors.Is(err, ErrNoTimeLeft), tt.wantNoTime, err)
			}
			if strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error shows the webhook URL: %v", err)
			}
		})
	}
}

// TestWebhookRealWait waits out a real one-second Retry-After.
func TestWebhookRealWait(t *testing.T) {
	srv, posts := scriptedSlack(t, reply{429, "1", "rate_limited"}, reply{200, "", "ok"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := NewWebhook(srv.URL, srv.Client(), DefaultWebhookConfig()).Post(ctx, testMessage()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() != 2 {
		t.Fatalf("%d posts, want 2", posts.Load())
	}
}

func TestWebhookNetworkErrorHidesURL(t *testing.T) {
	srv, _ := scriptedSlack(t, reply{200, "", "ok"})
	u := srv.URL + "/services/T000/B000/secret-token"
	srv.Close()
	err := NewWebhook(u, srv.Client(), DefaultWebhookConfig()).Post(context.Background(), testMessage())
	if err == nil {
		t.Fatal("post to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Errorf("error shows the webhook URL: %v", err)
	}
}

// TestHandlerOutcomes drives the Lambda handler, through aws-lambda-go's own
// Invoke, against each Slack answer: success and permanent refusals end the
// invocation well (a refusal logged with Slack's error string); 5xx and an
// unaffordable rate limit fail it so Lambda retries.
func TestHandlerOutcomes(t *testing.T) {
	payload, err := os.ReadFile("testdata/sns/deploy-halted.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		replies []reply
		wantErr bool
		wantLog string
	}{
		{"200", []reply{{200, "", "ok"}}, false, `msg="sent to slack"`},
		{"429 then 200", []reply{{429, "1", "rate_limited"}, {200, "", "ok"}}, false, `msg="sent to slack"`},
		{"429 longer than the invocation", []reply{{429, "600", "rate_limited"}}, true, ""},
		{"400 invalid_payload", []reply{{400, "", "invalid_payload"}}, false, `slack_error=invalid_payload`},
		{"500", []reply{{500, "", "<html>error</html>"}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := scriptedSlack(t, tt.replies...)
			var logs bytes.Buffer
			wh := NewWebhook(srv.URL, srv.Client(), DefaultWebhookConfig())
			wh.wait = func(context.Context, time.Duration) error { return nil }
			h := &Handler{Poster: wh, Config: DefaultConfig(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := lambda.NewHandler(h.Handle).Invoke(ctx, payload)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Invoke error %v, want error: %v", err, tt.wantErr)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}

func TestHandlerNoRecords(t *testing.T) {
	srv, posts := scriptedSlack(t, reply{200, "", "ok"})
	h := &Handler{Poster: NewWebhook(srv.URL, srv.Client(), DefaultWebhookConfig()), Config: DefaultConfig(), Logger: slog.New(slog.DiscardHandler)}
	if _, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), []byte(`{"Records":[]}`)); err != nil {
		t.Fatal(err)
	}
	if posts.Load() != 0 {
		t.Fatalf("posted %d messages for no records", posts.Load())
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"seconds", "30", 30 * time.Second},
		{"fraction", "1.5", 1500 * time.Millisecond},
		{"date", now.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{"past date", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"negative", "-5", 0},
		{"absurd", "99999999", 0},
		{"garbage", "soon", 0},
		{"empty", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.in, now); got != tt.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
