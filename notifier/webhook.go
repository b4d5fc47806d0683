package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/aptfleet/aptfleet/internal/wait"
)

// WebhookConfig tunes delivery to a Slack incoming webhook.
type WebhookConfig struct {
	// MaxAttempts bounds the posts of one message, counting those repeated
	// after a 429. Default 5.
	MaxAttempts int
	// DefaultRetryAfter is the wait after a 429 that names no usable
	// Retry-After. Default 1s.
	DefaultRetryAfter time.Duration
	// Reserve is kept back before the context's deadline: a wait that would
	// end inside it is not started, and the message fails instead so the
	// invocation is retried later. Default 2s.
	Reserve time.Duration
}

// DefaultWebhookConfig returns the defaults stated on WebhookConfig's fields.
func DefaultWebhookConfig() WebhookConfig {
	return WebhookConfig{MaxAttempts: 5, DefaultRetryAfter: time.Second, Reserve: 2 * time.Second}
}

// ErrNoTimeLeft means Slack asked to wait longer than the invocation has left.
var ErrNoTimeLeft = errors.New("notifier: no time left to wait for slack's rate limit")

// Error is Slack answering a post with something other than success.
type Error struct {
	StatusCode int
	// Message is Slack's error string ("invalid_payload", "no_text",
	// "channel_is_archived"...), or the HTTP status text when Slack sent none.
	Message string
	// RetryAfter is the wait Slack asked for with a 429.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("slack answered %d: %s", e.StatusCode, e.Message)
}

// Retryable reports whether posting again later may succeed: rate limits and
// Slack's own failures. Other refusals (a bad payload, a revoked webhook) will
// fail the same way every time.
func (e *Error) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Webhook posts messages to one Slack incoming webhook URL. Slack's client
// library has the message types but its webhook call drops the response body,
// where Slack puts the error string, and does not wait out a 429; so the post
// itself is made here.
type Webhook struct {
	url    string
	client *http.Client
	cfg    WebhookConfig
	now    func() time.Time
	wait   func(ctx context.Context, d time.Duration) error
}

// NewWebhook returns a Webhook posting to webhookURL with client.
func NewWebhook(webhookURL string, client *http.Client, cfg WebhookConfig) *Webhook {
	def := DefaultWebhookConfig()
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = def.MaxAttempts
	}
	if cfg.DefaultRetryAfter <= 0 {
		cfg.DefaultRetryAfter = def.DefaultRetryAfter
	}
	if cfg.Reserve < 0 {
		cfg.Reserve = 0
	}
	return &Webhook{url: webhookURL, client: client, cfg: cfg, now: time.Now, wait: wait.Sleep}
}

// Post delivers msg. A 429 is waited out as Slack asks, if the context's
// deadline leaves the time; otherwise, and for 5xx, the returned *Error is
// Retryable. Other 4xx give a non-retryable *Error carrying Slack's error.
func (w *Webhook) Post(ctx context.Context, msg *slack.WebhookMessage) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(msg); err != nil {
		return fmt.Errorf("encode slack message: %w", err)
	}
	var last error
	for attempt := 1; attempt <= w.cfg.MaxAttempts; attempt++ {
		err := w.post(ctx, body.Bytes())
		var se *Error
		if err == nil || !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests {
			return err
		}
		last = err
		if attempt == w.cfg.MaxAttempts {
			break
		}
		wait := se.RetryAfter
		if wait <= 0 {
			wait = w.cfg.DefaultRetryAfter
		}
		if deadline, ok := ctx.Deadline(); ok {
			if left := deadline.Sub(w.now()) - w.cfg.Reserve; wait > left {
				return fmt.Errorf("%w: asked to wait %s, %s left: %w", ErrNoTimeLeft, wait, left.Round(time.Millisecond), err)
			}
		}
		if err := w.wait(ctx, wait); err != nil {
			return fmt.Errorf("wait for slack's rate limit: %w", err)
		}
	}
	return fmt.Errorf("still rate limited after %d attempts: %w", w.cfg.MaxAttempts, last)
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("slack webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to slack: %w", redactURL(err))
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &Error{StatusCode: resp.StatusCode, Message: slackError(resp, text)}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), w.now())
	}
	return e
}

// slackError is the error string in Slack's answer: plain text for webhooks,
// {"ok":false,"error":"..."} for some endpoints, an HTML page for outages.
func slackError(resp *http.Response, body []byte) string {
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "{") {
		var v struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &v) == nil && v.Error != "" {
			return v.Error
		}
	}
	if s == "" || strings.HasPrefix(s, "<") || strings.Contains(resp.Header.Get("Content-Type"), "html") {
		return http.StatusText(resp.StatusCode)
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(strings.Join(strings.Fields(s), " "), "")
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || s > 24*3600 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redactURL drops the webhook URL (a secret) from a client error.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
