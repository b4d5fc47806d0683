//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/notifier"
)

// snsCapture is a hand-written stand-in for SNS's Publish call (SNS cannot
// run here): the pullers publish their deploy events to it with the real
// aws-sdk-go-v2 client, and it hands each message to the notifier's decoder
// and renderer, keeping what Slack would show.
type snsCapture struct {
	url string
	tl  *timeline

	mu     sync.Mutex
	events []event.Deploy
	slack  []string // each message's fallback text, as a Slack notification shows it
}

func newSNSCapture(t *testing.T, tl *timeline) *snsCapture {
	c := &snsCapture{tl: tl}
	srv := httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

func (c *snsCapture) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "Publish" || r.Form.Get("TopicArn") != topicARN {
		http.Error(w, "want Action=Publish on "+topicARN, http.StatusBadRequest)
		return
	}
	raw := r.Form.Get("Message")
	rec := events.SNSEntity{TopicArn: topicARN, Subject: r.Form.Get("Subject"), Message: raw, Timestamp: time.Now().UTC(), Type: "Notification"}
	msg := notifier.Decode(raw)
	out := notifier.Render(rec, msg, notifier.DefaultConfig())
	var ev event.Deploy
	decodeErr := json.Unmarshal([]byte(raw), &ev)
	c.mu.Lock()
	n := len(c.events)
	if decodeErr == nil && msg.Kind == notifier.KindDeploy {
		c.events = append(c.events, ev)
	}
	c.slack = append(c.slack, out.Text)
	c.mu.Unlock()
	c.tl.add("slack: %s", strings.SplitN(out.Text, "\n", 2)[0])
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-%d</MessageId></PublishResult><ResponseMetadata><RequestId>r-%d</RequestId></ResponseMetadata></PublishResponse>`, n, n)
}

// deploys returns the deploy events received for version.
func (c *snsCapture) deploys(version string) []event.Deploy {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event.Deploy
	for _, e := range c.events {
		if e.Version == version {
			out = append(out, e)
		}
	}
	return out
}

// slackTexts returns the Slack texts received so far.
func (c *snsCapture) slackTexts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.slack...)
}

// waitEvent waits for a deploy event of kind for version.
func (c *snsCapture) waitEvent(ctx context.Context, kind event.Kind, version string, timeout time.Duration) (event.Deploy, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		for _, e := range c.deploys(version) {
			if e.Kind == kind {
				return e, nil
			}
		}
		select {
		case <-ctx.Done():
			return event.Deploy{}, fmt.Errorf("no %s event for %s within %s", kind, version, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rolloutFigures sums up one rollout from the hosts' deploy events.
type rolloutFigures struct {
	Version      string
	Hosts        int           // hosts that started deploying it
	Succeeded    int           // hosts healthy on it
	Failed       int           // hosts that failed it
	First, Last  time.Time     // first started, last succeeded or rolled back
	PerHost      time.Duration // mean deploy duration of the hosts that succeeded
	PeakDeployer int           // most hosts between started and their end, at once
}

// figures computes a rollout's figures from its events. A host that started
// and never ended (killed) counts as deploying until cut. Hosts in
// bootstrapped installed without the lock, on first boot before taking
// traffic, as the design has it: they do not count as concurrent deployers.
func figures(version string, evs []event.Deploy, cut map[string]time.Time, bootstrapped map[string]bool) rolloutFigures {
	f := rolloutFigures{Version: version}
	start, end := map[string]time.Time{}, map[string]time.Time{}
	var total time.Duration
	var finished int
	for _, e := range evs {
		switch e.Kind {
		case event.Started:
			start[e.Host] = e.Time
			if f.First.IsZero() || e.Time.Before(f.First) {
				f.First = e.Time
			}
		case event.Succeeded, event.RolledBack:
			end[e.Host] = e.Time
			if e.Time.After(f.Last) {
				f.Last = e.Time
			}
		}
		switch e.Kind {
		case event.Succeeded:
			f.Succeeded++
		case event.Failed:
			f.Failed++
		}
		if e.Kind == event.Succeeded && e.DurationSeconds > 0 {
			total += time.Duration(e.DurationSeconds * float64(time.Second))
			finished++
		}
	}
	f.Hosts = len(start)
	if finished > 0 {
		f.PerHost = total / time.Duration(finished)
	}
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for h, s := range start {
		if bootstrapped[h] {
			continue
		}
		e, ok := end[h]
		if !ok {
			if e, ok = cut[h]; !ok {
				e = time.Now()
			}
		}
		edges = append(edges, edge{s, +1}, edge{e, -1})
	}
	// Ends sort before starts at the same instant: a slot handed over.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].d < edges[j].d
		}
		return edges[i].at.Before(edges[j].at)
	})
	n := 0
	for _, e := range edges {
		n += e.d
		f.PeakDeployer = max(f.PeakDeployer, n)
	}
	return f
}

// observer samples the fleet every 100ms: host records in Redis and HAProxy
// server states go to the timeline when they change, and the deploy-slot
// holder count is tracked per rollout.
type observer struct {
	f    *fleet
	mu   sync.Mutex
	ver  string         // the rollout being watched
	peak map[string]int // version -> most slot holders sampled
	done chan struct{}
}

func observe(ctx context.Context, f *fleet) *observer {
	o := &observer{f: f, peak: map[string]int{}, done: make(chan struct{})}
	go o.loop(ctx)
	return o
}

// watch names the rollout whose slot holders are counted from now on.
func (o *observer) watch(version string) {
	o.mu.Lock()
	o.ver = version
	o.mu.Unlock()
}

// peakHolders returns the most slot holders sampled during version's rollout.
func (o *observer) peakHolders(version string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.peak[version]
}

func (o *observer) loop(ctx context.Context) {
	defer close(o.done)
	hosts := map[string]string{}
	servers := map[string]string{}
	slots := "aptfleet:" + app + ":" + env + ":slots"
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if n, err := o.f.rdb.ZCard(ctx, slots).Result(); err == nil {
			o.mu.Lock()
			if o.ver != "" && int(n) > o.peak[o.ver] {
				o.peak[o.ver] = int(n)
			}
			o.mu.Unlock()
		}
		if recs, err := o.f.state.Hosts(ctx, app, env); err == nil {
			for _, h := range slices.Sorted(maps.Keys(recs)) {
				r := recs[h]
				if s := string(r.State) + " " + r.Version; hosts[h] != s {
					hosts[h] = s
					o.f.tl.add("%s: %s", h, s)
				}
			}
		}
		if st, err := o.f.lbStatus(); err == nil {
			for _, h := range slices.Sorted(maps.Keys(st)) {
				if old := servers[h]; old != st[h] {
					servers[h] = st[h]
					if old != "" {
						o.f.tl.add("haproxy: %s %s -> %s", h, old, st[h])
					}
				}
			}
		}
	}
}
