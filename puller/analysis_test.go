package puller

import (
	"strings"
	"testing"
)

func sample(kv ...any) map[string]ServerCounters {
	m := map[string]ServerCounters{}
	for i := 0; i < len(kv); i += 4 {
		m[kv[i].(string)] = ServerCounters{Status: "UP", Requests: int64(kv[i+1].(int)), Errors: int64(kv[i+2].(int)), LatencyMs: float64(kv[i+3].(int))}
	}
	return m
}

func TestAnalyze(t *testing.T) {
	def := defaultApp(App{}).Canary.Analysis // 2%, 2x, 1.5x, 200
	tests := []struct {
		name     string
		samples  []map[string]ServerCounters
		pass     bool
		insuff   bool
		failedIn string // a substring of the failed thresholds
		note     string
	}{
		{"healthy canary", []map[string]ServerCounters{
			sample("c", 100, 0, 5, "b1", 1000, 1, 5, "b2", 500, 0, 5),
			sample("c", 400, 1, 5, "b1", 1300, 1, 5, "b2", 800, 0, 5),
		}, true, false, "", ""},
		{"20% 5xx", []map[string]ServerCounters{
			sample("c", 0, 0, 5, "b1", 0, 0, 5),
			sample("c", 300, 60, 5, "b1", 300, 0, 5),
		}, false, false, "error rate 20.00% > max_error_rate 2.00%", ""},
		{"1.5% 5xx: under the absolute limit, above 2x the baseline", []map[string]ServerCounters{
			sample("c", 0, 0, 5, "b1", 0, 0, 5),
			sample("c", 1000, 15, 5, "b1", 5000, 10, 5),
		}, false, false, "error rate 3.0x the baseline's", ""}, // the 0.2% baseline counts as 1/200
		{"0.5% 5xx against a perfect baseline is noise", []map[string]ServerCounters{
			sample("c", 0, 0, 5, "b1", 0, 0, 5),
			sample("c", 1000, 5, 5, "b1", 5000, 0, 5),
		}, true, false, "", ""},
		{"slow canary", []map[string]ServerCounters{
			sample("c", 0, 0, 10, "b1", 0, 0, 10),
			sample("c", 300, 0, 40, "b1", 300, 0, 10),
		}, false, false, "latency 4.0x the baseline's", ""},
		{"too few requests", []map[string]ServerCounters{
			sample("c", 0, 0, 5, "b1", 0, 0, 5),
			sample("c", 150, 0, 5, "b1", 150, 0, 5),
		}, false, true, "150 requests < min_requests 200", ""},
		{"no baseline: absolute limit only", []map[string]ServerCounters{
			sample("c", 0, 0, 5),
			sample("c", 300, 3, 50),
		}, true, false, "", "baseline served 0 < 200 requests: ratios not checked"},
		{"counters reset by a reload", []map[string]ServerCounters{
			sample("c", 1000, 0, 5, "b1", 1000, 0, 5),
			sample("c", 1100, 0, 5, "b1", 1100, 0, 5),
			sample("c", 150, 30, 5, "b1", 150, 0, 5), // reload: from zero
		}, false, false, "error rate 12.00%", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Observation
			for _, s := range tt.samples {
				o.Add(s)
			}
			v := Analyze(def, &o, []string{"c"})
			if v.Pass != tt.pass || v.Insufficient != tt.insuff {
				t.Fatalf("verdict %s: pass %v insufficient %v, want %v %v", v, v.Pass, v.Insufficient, tt.pass, tt.insuff)
			}
			if !strings.Contains(strings.Join(v.Failed, "; "), tt.failedIn) || !strings.Contains(strings.Join(v.Notes, "; "), tt.note) {
				t.Fatalf("verdict %s: want failed containing %q and notes %q", v, tt.failedIn, tt.note)
			}
		})
	}
	var o Observation
	o.Add(sample("c", 0, 0, 5, "b1", 0, 0, 5))
	o.Add(sample("c", 300, 60, 5, "b1", 300, 0, 5))
	if got, want := Analyze(def, &o, []string{"c"}).String(),
		"analysis failed (error rate 20.00% > max_error_rate 2.00%; error rate 40.0x the baseline's > max_error_rate_ratio 2): canary 60/300 5xx (20.00%), 5 ms over 1 server(s); baseline 0/300 5xx (0.00%), 5 ms over 1 server(s)"; got != want {
		t.Errorf("summary\n%s\nwant\n%s", got, want)
	}
}

// The worked example of docs/agent.md.
func TestAnalyzeWorkedExample(t *testing.T) {
	def := defaultApp(App{}).Canary.Analysis
	for _, tt := range []struct {
		canaryErrors int
		want         string
	}{
		{14, "analysis failed (error rate 2.3x the baseline's > max_error_rate_ratio 2): canary 14/1200 5xx (1.17%), 42 ms over 1 server(s); baseline 11/10800 5xx (0.10%), 30 ms over 9 server(s)"},
		{5, "analysis passed: canary 5/1200 5xx (0.42%), 42 ms over 1 server(s); baseline 11/10800 5xx (0.10%), 30 ms over 9 server(s)"},
	} {
		var o Observation
		start, end := map[string]ServerCounters{"c": {}}, map[string]ServerCounters{"c": {Requests: 1200, Errors: int64(tt.canaryErrors), LatencyMs: 42}}
		for i := range 9 {
			name := "base" + string(rune('0'+i))
			start[name] = ServerCounters{}
			end[name] = ServerCounters{Requests: 1200, LatencyMs: 30}
			if i == 0 {
				end[name] = ServerCounters{Requests: 1200, Errors: 11, LatencyMs: 30}
			}
		}
		o.Add(start)
		o.Add(end)
		if got := Analyze(def, &o, []string{"c"}).String(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}
