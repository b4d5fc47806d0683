package puller

import (
	"fmt"
	"slices"
	"strings"
)

// ServerCounters is one load balancer server's counters at one moment, as
// HAProxy's "show stat" gives them.
type ServerCounters struct {
	// Status is the server's state ("UP", "DRAIN", "MAINT", "DOWN"...).
	Status string
	// Requests is the HTTP requests the server answered (req_tot), or its
	// sessions (stot) on a backend that does not count requests.
	Requests int64
	// Errors is the 5xx responses it answered (hrsp_5xx).
	Errors int64
	// LatencyMs is the mean response time of its last 1024 requests in
	// milliseconds (rtime; ttime, the total session time, when rtime is 0).
	LatencyMs float64
}

// Observation accumulates a backend's counters over a bake: the request and
// 5xx counts between the first and the latest sample, and the mean of the
// latency samples after the first, per server.
type Observation struct {
	first, last map[string]ServerCounters
	latSum      map[string]float64
	latN        map[string]int
}

// Add records one sample. A server missing from the first sample starts at
// its first appearance; a counter that went down (HAProxy reloaded) counts
// from zero.
func (o *Observation) Add(sample map[string]ServerCounters) {
	if o.first == nil {
		o.first, o.last = map[string]ServerCounters{}, map[string]ServerCounters{}
		o.latSum, o.latN = map[string]float64{}, map[string]int{}
	}
	for name, c := range sample {
		f, seen := o.first[name]
		if !seen {
			o.first[name] = c
			o.last[name] = c
			continue
		}
		if l := o.last[name]; c.Requests < l.Requests || c.Errors < l.Errors {
			// The counters restarted: keep what was counted before.
			f.Requests -= l.Requests
			f.Errors -= l.Errors
			o.first[name] = f
		}
		o.last[name] = c
		o.latSum[name] += c.LatencyMs
		o.latN[name]++
	}
}

// Figures are one group's numbers over an observation.
type Figures struct {
	Servers   int     `json:"servers"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	LatencyMs float64 `json:"latency_ms"` // request-weighted mean of the servers' mean response times
}

func (f Figures) String() string {
	return fmt.Sprintf("%d/%d 5xx (%.2f%%), %.0f ms over %d server(s)", f.Errors, f.Requests, 100*f.ErrorRate, f.LatencyMs, f.Servers)
}

// Verdict is the outcome of a canary analysis.
type Verdict struct {
	Canary   Figures `json:"canary"`
	Baseline Figures `json:"baseline"`
	// Pass: no threshold crossed, with enough evidence.
	Pass bool `json:"pass"`
	// Insufficient: the canaries served fewer than MinRequests.
	Insufficient bool `json:"insufficient,omitempty"`
	// Failed lists the thresholds crossed.
	Failed []string `json:"failed,omitempty"`
	// Notes says what was not checked and why.
	Notes []string `json:"notes,omitempty"`
}

// String is the one-line summary used as an event's reason.
func (v Verdict) String() string {
	var b strings.Builder
	switch {
	case v.Insufficient:
		b.WriteString("not enough requests: ")
	case v.Pass:
		b.WriteString("analysis passed: ")
	default:
		b.WriteString("analysis failed (" + strings.Join(v.Failed, "; ") + "): ")
	}
	fmt.Fprintf(&b, "canary %s; baseline %s", v.Canary, v.Baseline)
	for _, n := range v.Notes {
		b.WriteString("; " + n)
	}
	return b.String()
}

// figures sums the servers in names (or, with exclude, every other server
// that served requests).
func (o *Observation) figures(names []string, exclude bool) Figures {
	var f Figures
	var latWeighted float64
	for name, last := range o.last {
		if slices.Contains(names, name) == exclude {
			continue
		}
		req := last.Requests - o.first[name].Requests
		errs := last.Errors - o.first[name].Errors
		if exclude && req <= 0 {
			continue // a baseline server that served nothing says nothing
		}
		f.Servers++
		f.Requests += req
		f.Errors += errs
		if n := o.latN[name]; n > 0 {
			latWeighted += o.latSum[name] / float64(n) * float64(req)
		}
	}
	if f.Requests > 0 {
		f.ErrorRate = float64(f.Errors) / float64(f.Requests)
		f.LatencyMs = latWeighted / float64(f.Requests)
	}
	return f
}

// Analyze judges the canaries (server names) against every other server of
// the backend over the observation:
//
//   - the canaries must have served at least MinRequests, else the verdict
//     is Insufficient (the agent extends the bake once, then fails);
//   - their 5xx rate must not exceed MaxErrorRate;
//   - when the baseline (the other servers) served at least MinRequests too:
//     the canary rate must not exceed MaxErrorRateRatio x the baseline's,
//     a baseline rate below 1/MinRequests counting as 1/MinRequests (fewer
//     errors than that is noise), and the canaries' mean response time must
//     not exceed MaxLatencyRatio x the baseline's (both floored at 1 ms, the
//     counters' resolution). With a smaller baseline the ratios are not
//     checked, and the verdict says so.
func Analyze(a Analysis, o *Observation, canaries []string) Verdict {
	v := Verdict{Canary: o.figures(canaries, false), Baseline: o.figures(canaries, true)}
	if v.Canary.Requests < int64(a.MinRequests) {
		v.Insufficient = true
		v.Failed = append(v.Failed, fmt.Sprintf("%d requests < min_requests %d", v.Canary.Requests, a.MinRequests))
		return v
	}
	if v.Canary.ErrorRate > a.MaxErrorRate {
		v.Failed = append(v.Failed, fmt.Sprintf("error rate %.2f%% > max_error_rate %.2f%%", 100*v.Canary.ErrorRate, 100*a.MaxErrorRate))
	}
	if v.Baseline.Requests >= int64(a.MinRequests) {
		base := max(v.Baseline.ErrorRate, 1/float64(a.MinRequests))
		if r := v.Canary.ErrorRate / base; r > a.MaxErrorRateRatio {
			v.Failed = append(v.Failed, fmt.Sprintf("error rate %.1fx the baseline's > max_error_rate_ratio %g", r, a.MaxErrorRateRatio))
		}
		if r := max(v.Canary.LatencyMs, 1) / max(v.Baseline.LatencyMs, 1); r > a.MaxLatencyRatio {
			v.Failed = append(v.Failed, fmt.Sprintf("latency %.1fx the baseline's > max_latency_ratio %g", r, a.MaxLatencyRatio))
		}
	} else {
		v.Notes = append(v.Notes, fmt.Sprintf("baseline served %d < %d requests: ratios not checked", v.Baseline.Requests, a.MinRequests))
	}
	v.Pass = len(v.Failed) == 0
	return v
}
