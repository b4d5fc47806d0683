package notifier

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Cause is an Auto Scaling activity's Cause read for people: the steps it
// lists, what set it off, and the capacity change.
type Cause struct {
	Steps   []Step
	Trigger string // what set the activity off, in a few words; "" if unknown
	// From and To are the capacity before and after; Changed reports whether
	// the Cause stated them.
	From, To int
	Changed  bool
}

// Step is one "At <time> <what happened>" sentence of a Cause.
type Step struct {
	At   time.Time // zero when the step carried no time
	Text string
}

var (
	stepStart = regexp.MustCompile(`At (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z) `)
	desired   = regexp.MustCompile(`desired capacity from (\d+) to (\d+)`)
	capacity  = regexp.MustCompile(`capacity from (\d+) to (\d+)`)

	// triggers map the Cause sentences Auto Scaling writes to what set them
	// off. The first step matching one of them names the trigger.
	triggers = []struct {
		re     *regexp.Regexp
		format func(m []string) string
	}{
		{regexp.MustCompile(`a monitor alarm (\S+) in state (\S+) triggered policy (.+?)(?: changing| increasing| decreasing|$)`),
			func(m []string) string { return "alarm " + m[1] + " (" + m[2] + ") triggered policy " + m[3] }},
		{regexp.MustCompile(`a user request update of AutoScalingGroup constraints to (min: \d+, max: \d+, desired: \d+)`),
			func(m []string) string { return "a user changed the group's size (" + m[1] + ")" }},
		{regexp.MustCompile(`a user request explicitly set group desired capacity`),
			func([]string) string { return "a user set the desired capacity" }},
		{regexp.MustCompile(`a user request (.+?)(?: changing| increasing| decreasing|$)`),
			func(m []string) string { return "a user request (" + m[1] + ")" }},
		{regexp.MustCompile(`a scheduled action (?:update of AutoScalingGroup constraints to )?(min: \d+, max: \d+, desired: \d+)`),
			func(m []string) string { return "a scheduled action (" + m[1] + ")" }},
		{regexp.MustCompile(`a scheduled action`),
			func([]string) string { return "a scheduled action" }},
		{regexp.MustCompile(`(?i)predictive scaling`),
			func([]string) string { return "predictive scaling" }},
		{regexp.MustCompile(`in response to an EC2 health check`),
			func([]string) string { return "an EC2 health check (the instance was stopped, terminated or impaired)" }},
		{regexp.MustCompile(`(?i)ELB system health check failure`),
			func([]string) string { return "a load balancer health check failure" }},
		{regexp.MustCompile(`(?i)user health-check`),
			func([]string) string { return "an instance marked unhealthy through the API" }},
		{regexp.MustCompile(`(?i)instance refresh`),
			func([]string) string { return "an instance refresh" }},
		{regexp.MustCompile(`(?i)balanc(?:e|ing) the group's zones|AZRebalance|availability zone rebalancing`),
			func([]string) string { return "Availability Zone rebalancing" }},
		{regexp.MustCompile(`(?i)spot (?:instance )?interruption|rebalance recommendation`),
			func([]string) string { return "a Spot interruption notice" }},
		{regexp.MustCompile(`(?i)max instance lifetime|maximum instance lifetime`),
			func([]string) string { return "the maximum instance lifetime" }},
		{regexp.MustCompile(`(?i)warm pool`),
			func([]string) string { return "the warm pool" }},
	}
)

// ParseCause reads an Auto Scaling Cause. It never fails: text it does not
// recognise is kept as one step.
func ParseCause(s string) Cause {
	var c Cause
	s = strings.TrimSpace(s)
	if s == "" {
		return c
	}
	idx := stepStart.FindAllStringSubmatchIndex(s, -1)
	if len(idx) == 0 {
		c.Steps = []Step{{Text: cleanSentence(s)}}
	} else {
		if lead := cleanSentence(s[:idx[0][0]]); lead != "" {
			c.Steps = append(c.Steps, Step{Text: lead})
		}
		for i, m := range idx {
			end := len(s)
			if i+1 < len(idx) {
				end = idx[i+1][0]
			}
			at, _ := time.Parse(time.RFC3339, s[m[2]:m[3]])
			c.Steps = append(c.Steps, Step{At: at, Text: cleanSentence(s[m[1]:end])})
		}
	}
	m := desired.FindStringSubmatch(s)
	if m == nil {
		m = capacity.FindStringSubmatch(s)
	}
	if m != nil {
		from, err1 := strconv.Atoi(m[1])
		to, err2 := strconv.Atoi(m[2])
		if err1 == nil && err2 == nil {
			c.From, c.To, c.Changed = from, to, true
		}
	}
	for _, st := range c.Steps {
		for _, t := range triggers {
			if m := t.re.FindStringSubmatch(st.Text); m != nil {
				c.Trigger = t.format(m)
				return c
			}
		}
	}
	return c
}

// cleanSentence trims space and a final full stop.
func cleanSentence(s string) string {
	return strings.TrimSuffix(strings.TrimSpace(s), ".")
}
