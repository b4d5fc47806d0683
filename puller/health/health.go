// Package health checks an application over HTTP after a restart: the app is
// healthy once it answers a number of consecutive 2xx responses within a
// deadline.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/puller"
)

var _ puller.Checker = (*Checker)(nil)

// Config configures a Checker.
type Config struct {
	// URL is requested with GET. Required.
	URL string
	// Consecutive 2xx answers needed; any other answer or a failed request
	// starts the count again. Default 3.
	Consecutive int
	// Interval between the starts of two requests. Default 1s.
	Interval time.Duration
	// Timeout of one request, connection and body included. Default 2s.
	Timeout time.Duration
	// Deadline of the whole check. Default 60s.
	Deadline time.Duration
	// Client sends the requests. Default: a client of its own that does not
	// follow redirects (a redirect is not a 2xx).
	Client *http.Client
}

// DefaultConfig returns the defaults; URL is empty.
func DefaultConfig() Config {
	return Config{Consecutive: 3, Interval: time.Second, Timeout: 2 * time.Second, Deadline: 60 * time.Second}
}

// Checker is an HTTP health check.
type Checker struct{ cfg Config }

// ErrUnhealthy: the check's deadline passed without enough consecutive 2xx.
var ErrUnhealthy = errors.New("health: unhealthy")

// New validates cfg and returns a Checker; zero fields take their defaults.
func New(cfg Config) (*Checker, error) {
	def := DefaultConfig()
	if cfg.Consecutive == 0 {
		cfg.Consecutive = def.Consecutive
	}
	if cfg.Interval == 0 {
		cfg.Interval = def.Interval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = def.Deadline
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("health url %q: not an http(s) URL", cfg.URL)
	}
	if cfg.Consecutive < 1 || cfg.Interval < 0 || cfg.Timeout < 0 || cfg.Deadline < 0 {
		return nil, fmt.Errorf("health %s: consecutive must be >= 1 and durations positive", cfg.URL)
	}
	return &Checker{cfg: cfg}, nil
}

// Check returns nil as soon as Consecutive requests in a row answered 2xx,
// or an ErrUnhealthy error with the last failure once Deadline (or ctx) ends.
func (c *Checker) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Deadline)
	defer cancel()
	streak, best, tries := 0, 0, 0
	var last string
	for {
		start := time.Now()
		tries++
		if err := c.probe(ctx); err != nil {
			if ctx.Err() != nil && last != "" {
				// Cut off by the deadline: the failure before says more.
				return c.unhealthy(best, tries, last)
			}
			streak, last = 0, err.Error()
		} else {
			streak++
			best = max(best, streak)
			if streak >= c.cfg.Consecutive {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return c.unhealthy(best, tries, last)
		case <-time.After(c.cfg.Interval - time.Since(start)):
		}
	}
}

func (c *Checker) unhealthy(best, tries int, last string) error {
	if last == "" {
		last = "no failure, too few answers"
	}
	return fmt.Errorf("%w: %s: at most %d of %d consecutive 2xx in %d requests within %s; last: %s",
		ErrUnhealthy, c.cfg.URL, best, c.cfg.Consecutive, tries, c.cfg.Deadline, last)
}

// probe makes one request.
func (c *Checker) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "aptfleet-puller")
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := strings.Join(strings.Fields(string(body)), " ")
		if len(snippet) > 80 {
			snippet = snippet[:80] + "..."
		}
		if snippet != "" {
			return fmt.Errorf("%s: %s", resp.Status, snippet)
		}
		return errors.New(resp.Status)
	}
	if err != nil {
		return fmt.Errorf("%s, reading the body: %w", resp.Status, err)
	}
	return nil
}
