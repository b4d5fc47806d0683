package notifier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"

	"github.com/aptfleet/aptfleet/internal/event"
)

// Config controls how messages are rendered.
type Config struct {
	// HaltMention opens the message of a halted rollout so the channel is
	// notified, e.g. "<!here>", "<!channel>" or "<!subteam^ID>".
	// Default "<!here>"; empty mentions nobody.
	HaltMention string
	// ConsoleLinks links groups, instances and alarms to the AWS console
	// when the region is known. Default true.
	ConsoleLinks bool
}

// DefaultConfig returns the defaults stated on Config's fields.
func DefaultConfig() Config {
	return Config{HaltMention: "<!here>", ConsoleLinks: true}
}

// Attachment colours.
const (
	colorGood    = "#2eb886"
	colorDanger  = "#d00000"
	colorWarning = "#daa038"
	colorInfo    = "#439fe0"
	colorNeutral = "#9e9e9e"
)

// Slack's Block Kit limits, in characters.
const (
	maxHeader  = 150
	maxSection = 3000
	maxField   = 2000
	maxFields  = 10
	maxText    = 1000 // fallback text: Slack allows more; a notification line needs less
)

// card is a rendered message before it becomes a Slack payload.
type card struct {
	title   string // header, plain text
	color   string
	text    string // fallback text, mrkdwn (escaped)
	mention string // mrkdwn mention put before everything, or ""
	body    []slack.Block
}

// Render builds the Slack payload for one SNS record: a header block, a
// coloured attachment holding the details as Block Kit blocks, and a plain
// fallback text for notifications and clients without blocks.
func Render(rec events.SNSEntity, msg Message, cfg Config) *slack.WebhookMessage {
	r := renderer{cfg: cfg}
	var c card
	switch msg.Kind {
	case KindAutoScaling:
		c = r.autoScaling(msg.AutoScaling)
	case KindAlarm:
		c = r.alarm(msg.Alarm)
	case KindDeploy:
		c = r.deploy(msg.Deploy)
	default:
		c = r.other(rec, msg)
	}
	if len(c.body) == 0 {
		c.body = append(c.body, section(c.text))
	}
	if ctx := recordContext(rec); ctx != "" {
		c.body = append(c.body, slack.NewContextBlock("", mrkdwn(clip(ctx, maxSection))))
	}

	top := []slack.Block{slack.NewHeaderBlock(plain(clip(c.title, maxHeader)))}
	text := c.text
	if c.mention != "" {
		top = append(top, slack.NewSectionBlock(mrkdwn(c.mention+" "+clip(c.text, maxText)), nil, nil))
		text = c.mention + " " + text
	}
	return &slack.WebhookMessage{
		Text:   clip(text, maxText+len(c.mention)+1),
		Blocks: &slack.Blocks{BlockSet: top},
		Attachments: []slack.Attachment{{
			Color:    c.color,
			Fallback: clip(c.text, maxText),
			Blocks:   slack.Blocks{BlockSet: c.body},
		}},
	}
}

type renderer struct{ cfg Config }

func (r renderer) autoScaling(as *AutoScaling) card {
	group := orDash(as.AutoScalingGroupName)
	region := arnRegion(as.AutoScalingGroupARN)
	cause := ParseCause(as.Cause)

	var c card
	var what string
	switch as.Event {
	case ASLaunch:
		c.title, c.color, what = ":arrow_up: Instance launched: "+group, colorGood, "Instance launched in "+group
	case ASLaunchError:
		c.title, c.color, what = ":x: Instance launch failed: "+group, colorDanger, "Instance launch failed in "+group
	case ASTerminate:
		c.title, c.color, what = ":arrow_down: Instance terminated: "+group, colorNeutral, "Instance terminated in "+group
	case ASTerminateError:
		c.title, c.color, what = ":warning: Instance termination failed: "+group, colorDanger, "Instance termination failed in "+group
	case ASTest:
		c.title, c.color, what = ":bell: Auto Scaling test notification: "+group, colorInfo, "Auto Scaling test notification for "+group
	default:
		ev := strings.TrimPrefix(as.Event, "autoscaling:")
		if ev == "" {
			ev = strings.TrimPrefix(as.LifecycleTransition, "autoscaling:")
		}
		if ev == "" {
			ev = "notification"
		}
		c.title, c.color, what = ":information_source: Auto Scaling "+ev+": "+group, colorNeutral, "Auto Scaling "+ev+" for "+group
	}

	failed := as.Event == ASLaunchError || as.Event == ASTerminateError || strings.EqualFold(as.StatusCode, "Failed")
	var lines []string
	desc := as.Description
	if failed && as.StatusMessage != "" {
		// The Description repeats the StatusMessage after "Status Reason:".
		if i := strings.Index(desc, "Status Reason:"); i >= 0 {
			desc = strings.TrimSpace(desc[:i])
		}
	}
	if desc != "" {
		lines = append(lines, esc(desc))
	}
	if failed && as.StatusMessage != "" {
		lines = append(lines, ":rotating_light: *Failure:* "+esc(as.StatusMessage))
	}
	if as.Event == ASTest {
		lines = append(lines, "Auto Scaling notifications for this group reach this channel.")
	}
	if len(lines) > 0 {
		c.body = append(c.body, section(strings.Join(lines, "\n")))
	}

	var fields []*slack.TextBlockObject
	fields = appendField(fields, "Group", r.link(consoleGroupURL(region, as.AutoScalingGroupName), as.AutoScalingGroupName))
	fields = appendField(fields, "Instance", r.link(consoleInstanceURL(region, as.EC2InstanceID), as.EC2InstanceID))
	if cause.Changed {
		fields = appendField(fields, "Capacity", fmt.Sprintf("%d → %d", cause.From, cause.To))
	}
	fields = appendField(fields, "Status", esc(as.StatusCode))
	fields = appendField(fields, "Availability Zone", esc(as.Details.AvailabilityZone))
	fields = appendField(fields, "Subnet", esc(as.Details.SubnetID))
	if as.Origin != "" || as.Destination != "" {
		fields = appendField(fields, "Origin → destination", esc(orDash(as.Origin))+" → "+esc(orDash(as.Destination)))
	}
	when := as.EndTime
	if when.IsZero() && when.Raw == "" {
		when = as.Time
	}
	fields = appendField(fields, "Time", esc(when.String()))
	if s := fieldsSection(fields); s != nil {
		c.body = append(c.body, s)
	}

	if cause.Trigger != "" {
		c.body = append(c.body, section("*Why:* "+esc(cause.Trigger)))
	}
	for _, a := range as.Details.InvokingAlarms {
		c.body = append(c.body, section(r.invokingAlarm(a)))
	}
	if len(cause.Steps) > 0 {
		var b strings.Builder
		b.WriteString("*Cause*")
		for _, st := range cause.Steps {
			b.WriteString("\n• ")
			if !st.At.IsZero() {
				b.WriteString(st.At.UTC().Format("15:04:05 UTC") + " ")
			}
			b.WriteString(esc(st.Text))
		}
		c.body = append(c.body, section(b.String()))
	}

	summary := what
	if as.EC2InstanceID != "" {
		summary += ": " + as.EC2InstanceID
	}
	var why []string
	if cause.Changed {
		why = append(why, fmt.Sprintf("capacity %d → %d", cause.From, cause.To))
	}
	if cause.Trigger != "" {
		why = append(why, cause.Trigger)
	}
	if len(why) > 0 {
		summary += " (" + strings.Join(why, "; ") + ")"
	}
	if failed && as.StatusMessage != "" {
		summary += ": " + as.StatusMessage
	}
	c.text = esc(summary)
	return c
}

// invokingAlarm describes the alarm behind a scaling activity in one section.
func (r renderer) invokingAlarm(a Alarm) string {
	name := a.AlarmName
	if name == "" {
		name = "(unnamed alarm)"
	}
	s := "*Alarm:* " + r.link(consoleAlarmURL(arnRegion(a.AlarmARN), a.AlarmName), name)
	if a.OldStateValue != "" || a.NewStateValue != "" {
		s += " " + esc(orDash(a.OldStateValue)) + " → " + esc(orDash(a.NewStateValue))
	}
	if t := a.StateChangeTime.String(); t != "" {
		s += " at " + esc(t)
	}
	if m := metricName(a.Trigger); m != "" {
		s += "\n" + esc(m)
		if cond := condition(a.Trigger); cond != "" {
			s += ": " + esc(cond)
		}
	}
	if a.NewStateReason != "" {
		s += "\n" + esc(a.NewStateReason)
	}
	return s
}

func (r renderer) alarm(a *Alarm) card {
	name := a.AlarmName
	if name == "" {
		name = "(unnamed alarm)"
	}
	state := orDash(a.NewStateValue)
	var c card
	switch a.NewStateValue {
	case "ALARM":
		c.title, c.color = ":rotating_light: ALARM: "+name, colorDanger
	case "OK":
		c.title, c.color = ":white_check_mark: OK: "+name, colorGood
	case "INSUFFICIENT_DATA":
		c.title, c.color = ":grey_question: INSUFFICIENT_DATA: "+name, colorWarning
	default:
		c.title, c.color = ":information_source: "+state+": "+name, colorNeutral
	}
	if a.AlarmDescription != "" {
		c.body = append(c.body, section(esc(a.AlarmDescription)))
	}
	region := arnRegion(a.AlarmARN)
	var fields []*slack.TextBlockObject
	fields = appendField(fields, "Alarm", r.link(consoleAlarmURL(region, a.AlarmName), name))
	fields = appendField(fields, "State", esc(orDash(a.OldStateValue))+" → "+esc(state))
	fields = appendField(fields, "Metric", esc(metricName(a.Trigger)))
	fields = appendField(fields, "Dimensions", esc(dimensions(a.Trigger.Dimensions)))
	fields = appendField(fields, "Condition", esc(condition(a.Trigger)))
	fields = appendField(fields, "Region", esc(a.Region))
	fields = appendField(fields, "Account", esc(a.AWSAccountID))
	fields = appendField(fields, "Changed at", esc(a.StateChangeTime.String()))
	if s := fieldsSection(fields); s != nil {
		c.body = append(c.body, s)
	}
	if a.NewStateReason != "" {
		c.body = append(c.body, section("*Reason*\n"+esc(a.NewStateReason)))
	}
	if len(a.Trigger.Metrics) > 0 {
		var b strings.Builder
		b.WriteString("*Metrics*")
		for _, q := range a.Trigger.Metrics {
			b.WriteString("\n• " + esc(metricQuery(q)))
		}
		c.body = append(c.body, section(b.String()))
	}
	summary := state + ": " + name
	if a.OldStateValue != "" {
		summary += " (" + a.OldStateValue + " → " + state + ")"
	}
	if a.NewStateReason != "" {
		summary += ": " + a.NewStateReason
	}
	c.text = esc(summary)
	return c
}

func (r renderer) deploy(d *event.Deploy) card {
	app, env, version, host := orDash(d.App), orDash(d.Env), orDash(d.Version), orDash(d.Host)
	actor := d.Actor
	if actor == "" {
		actor = "an unnamed operator"
	}
	var c card
	var summary string
	switch d.Kind {
	case event.Started:
		c.title, c.color = ":rocket: Deploying "+app+" "+version+" ("+env+") on "+host, colorInfo
		summary = fmt.Sprintf("Deploying %s %s (%s) on %s", app, version, env, host)
	case event.Succeeded:
		c.title, c.color = ":white_check_mark: "+app+" "+version+" ("+env+") is live on "+host, colorGood
		summary = fmt.Sprintf("%s %s (%s) is live on %s", app, version, env, host)
	case event.Failed:
		c.title, c.color = ":x: "+app+" "+version+" ("+env+") failed on "+host, colorDanger
		summary = fmt.Sprintf("%s %s (%s) failed on %s", app, version, env, host)
	case event.HostFailed:
		c.title, c.color = ":wrench: "+host+" quarantined: it could not deploy "+app+" "+version+" ("+env+")", colorWarning
		summary = fmt.Sprintf("Host %s could not deploy %s %s (%s) because of its own fault; the release is not marked broken, the rollout goes on without it, and it retries later", host, app, version, env)
	case event.RolledBack:
		back := "the previous version"
		if d.Previous != "" {
			back = d.Previous
		}
		c.title, c.color = ":leftwards_arrow_with_hook: "+app+" ("+env+") rolled back to "+back+" on "+host, colorWarning
		summary = fmt.Sprintf("%s (%s) rolled back from %s to %s on %s", app, env, version, back, host)
	case event.Halted:
		c.title, c.color = ":octagonal_sign: ROLLOUT HALTED: "+app+" "+version+" ("+env+")", colorDanger
		c.mention = r.cfg.HaltMention
		summary = fmt.Sprintf("Rollout of %s %s to %s halted", app, version, env)
		c.body = append(c.body, section(fmt.Sprintf(
			":octagonal_sign: *Version %s is marked broken for %s/%s.* No other host will install it. "+
				"Publish a fixed version, or yank this one; hosts already on it stay there until then.",
			esc(version), esc(app), esc(env))))
	case event.RolloutStarted:
		c.title, c.color = ":rocket: Rollout of "+app+" "+version+" ("+env+") started", colorInfo
		summary = fmt.Sprintf("Rollout of %s %s to %s started on %s", app, version, env, host)
	case event.RolloutDone:
		c.title, c.color = ":white_check_mark: Rollout of "+app+" "+version+" ("+env+") done", colorGood
		summary = fmt.Sprintf("Rollout of %s %s to %s done", app, version, env)
	case event.Paused:
		c.title, c.color = ":double_vertical_bar: "+app+" ("+env+") paused by "+actor, colorWarning
		summary = fmt.Sprintf("%s (%s) paused by %s: no host starts a deploy until resumed", app, env, actor)
	case event.Resumed:
		c.title, c.color = ":arrow_forward: "+app+" ("+env+") resumed by "+actor, colorInfo
		summary = fmt.Sprintf("%s (%s) resumed by %s", app, env, actor)
	case event.Unbroken:
		c.title, c.color = ":adhesive_bandage: "+app+" "+version+" ("+env+") unmarked broken by "+actor, colorWarning
		summary = fmt.Sprintf("%s %s (%s) is no longer marked broken (by %s): its rollout runs again", app, version, env, actor)
	case event.Forgotten:
		c.title, c.color = ":wastebasket: "+app+" ("+env+") forgot host "+host, colorNeutral
		summary = fmt.Sprintf("%s (%s): host %s forgotten by %s", app, env, host, actor)
	case event.Promoted:
		from := ""
		if d.From != "" {
			from = " from " + d.From
		}
		c.title, c.color = ":arrow_up: "+app+" "+version+" promoted to "+env+from, colorInfo
		summary = fmt.Sprintf("%s %s promoted to %s%s by %s", app, version, env, from, actor)
	case event.Yanked:
		c.title, c.color = ":heavy_minus_sign: "+app+" "+version+" yanked from "+env, colorWarning
		summary = fmt.Sprintf("%s %s yanked from %s by %s", app, version, env, actor)
	case event.Rollback:
		c.title, c.color = ":rewind: ROLLBACK: "+app+" ("+env+") back to "+version, colorWarning
		summary = fmt.Sprintf("%s (%s) rolled back to %s by %s", app, env, version, actor)
		if d.Removed != "" {
			summary += " (removed " + d.Removed + ")"
		}
	case event.CanaryStarted:
		c.title, c.color = ":hatching_chick: Canary of "+app+" "+version+" ("+env+") started on "+host, colorInfo
		summary = fmt.Sprintf("Canary of %s %s (%s) started on %s: the other hosts wait for it", app, version, env, host)
	case event.CanaryPassed:
		c.title, c.color = ":hatched_chick: Canary of "+app+" "+version+" ("+env+") passed", colorGood
		summary = fmt.Sprintf("Canary of %s %s (%s) passed: the rest of the fleet rolls on", app, version, env)
	case event.CanaryAwaiting:
		c.title, c.color = ":hourglass: Canary of "+app+" "+version+" ("+env+") passed, awaiting promotion", colorWarning
		summary = fmt.Sprintf("Canary of %s %s (%s) passed and awaits promotion: `pkgbuild fleet promote-canary %s/%s %s`", app, version, env, app, env, version)
	case event.CanaryFailed:
		c.title, c.color = ":x: Canary of "+app+" "+version+" ("+env+") failed on "+host, colorDanger
		summary = fmt.Sprintf("Canary of %s %s (%s) failed on %s: the canaries roll back, no other host installs it", app, version, env, host)
	case event.CanaryPromoted:
		c.title, c.color = ":arrow_forward: Canary of "+app+" "+version+" ("+env+") promoted by "+actor, colorInfo
		summary = fmt.Sprintf("Canary of %s %s (%s) promoted by %s: the rest of the fleet rolls on", app, version, env, actor)
	case event.CanaryAborted:
		c.title, c.color = ":octagonal_sign: Canary of "+app+" "+version+" ("+env+") aborted by "+actor, colorDanger
		summary = fmt.Sprintf("Canary of %s %s (%s) aborted by %s: the version is marked broken, the canaries roll back", app, version, env, actor)
	default:
		kind := string(d.Kind)
		if kind == "" {
			kind = "event"
		}
		c.title, c.color = ":information_source: "+app+" "+version+" ("+env+"): deploy "+kind+" on "+host, colorNeutral
		summary = fmt.Sprintf("%s %s (%s): deploy %s on %s", app, version, env, kind, host)
	}
	if d.Reason != "" {
		summary += ": " + d.Reason
	}
	c.text = esc(summary)

	var fields []*slack.TextBlockObject
	fields = appendField(fields, "App", esc(d.App))
	fields = appendField(fields, "Env", esc(d.Env))
	fields = appendField(fields, "Version", esc(d.Version))
	fields = appendField(fields, "Previous", esc(d.Previous))
	fields = appendField(fields, "Host", esc(d.Host))
	fields = appendField(fields, "Actor", esc(d.Actor))
	fields = appendField(fields, "From", esc(d.From))
	fields = appendField(fields, "Removed", esc(d.Removed))
	if d.Total > 0 || d.Done > 0 || d.Failed > 0 {
		p := fmt.Sprintf("%d of %d done", d.Done, d.Total)
		if d.Total <= 0 {
			p = fmt.Sprintf("%d done", d.Done)
		}
		if d.Failed > 0 {
			p += fmt.Sprintf(", %d failed", d.Failed)
		}
		fields = appendField(fields, "Rollout", p)
	}
	if d.DurationSeconds > 0 {
		fields = appendField(fields, "Took", strconv.FormatFloat(d.DurationSeconds, 'f', 1, 64)+" s")
	}
	if steps := d.Steps.String(); steps != "" {
		fields = appendField(fields, "Steps", steps)
	}
	if !d.Time.IsZero() {
		fields = appendField(fields, "Time", d.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if s := fieldsSection(fields); s != nil {
		c.body = append(c.body, s)
	}
	if d.Reason != "" {
		c.body = append(c.body, section("*Reason*\n"+quote(d.Reason)))
	}
	if d.Output != "" {
		c.body = append(c.body, section("*Output*\n"+quote(d.Output)))
	}
	return c
}

func (r renderer) other(rec events.SNSEntity, msg Message) card {
	var c card
	title := rec.Subject
	if title == "" {
		title = "Message on " + orDash(arnResource(rec.TopicArn))
	}
	c.title, c.color = ":incoming_envelope: "+title, colorNeutral

	body := msg.Raw
	if msg.JSON {
		var b bytes.Buffer
		if json.Indent(&b, []byte(msg.Raw), "", "  ") == nil {
			body = b.String()
		}
	}
	body = strings.TrimSpace(body)
	if body == "" {
		body = "(empty message)"
	}
	// Three backticks inside would end the code block early.
	body = strings.ReplaceAll(body, "```", "'''")
	c.body = append(c.body, section("```\n"+clip(esc(body), maxSection-8)+"\n```"))

	line := strings.Join(strings.Fields(msg.Raw), " ")
	c.text = esc(clip(title+": "+line, maxText))
	return c
}

// recordContext is the small print under every message: where it came from.
func recordContext(rec events.SNSEntity) string {
	var parts []string
	if topic := arnResource(rec.TopicArn); topic != "" {
		parts = append(parts, "SNS topic "+esc(topic))
	}
	if !rec.Timestamp.IsZero() {
		parts = append(parts, rec.Timestamp.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if rec.MessageID != "" {
		parts = append(parts, "message "+esc(rec.MessageID))
	}
	return strings.Join(parts, " · ")
}

// metricName is "Namespace MetricName", or "" for a metric-math alarm.
func metricName(t Trigger) string {
	return strings.TrimSpace(t.Namespace + " " + t.MetricName)
}

// comparisons spell an alarm's ComparisonOperator.
var comparisons = map[string]string{
	"GreaterThanOrEqualToThreshold":            "≥",
	"GreaterThanThreshold":                     ">",
	"LessThanThreshold":                        "<",
	"LessThanOrEqualToThreshold":               "≤",
	"LessThanLowerOrGreaterThanUpperThreshold": "outside the band",
	"LessThanLowerThreshold":                   "below the band",
	"GreaterThanUpperThreshold":                "above the band",
}

// condition spells an alarm's condition, e.g. "Average > 80 for 3 × 60 s",
// or for an M out of N alarm "Sum ≥ 10 in 3 of 5 datapoints of 60 s", with
// how missing data counts when that is not the default.
func condition(t Trigger) string {
	stat := t.ExtendedStatistic
	if stat == "" && t.Statistic != "" {
		first, size := utf8.DecodeRuneInString(t.Statistic)
		stat = strings.ToUpper(string(first)) + strings.ToLower(t.Statistic[size:])
	}
	if stat == "" {
		// A metric-math alarm compares the query that returns data.
		for _, q := range t.Metrics {
			if q.ReturnData {
				stat = q.ID
				break
			}
		}
	}
	op, ok := comparisons[t.ComparisonOperator]
	if !ok {
		op = t.ComparisonOperator
	}
	var threshold string
	switch {
	case t.Threshold != nil:
		threshold = strconv.FormatFloat(*t.Threshold, 'g', -1, 64)
		if t.Unit != "" {
			threshold += " " + t.Unit
		}
	case t.ThresholdMetricID != "":
		threshold = "(" + t.ThresholdMetricID + ")"
	}
	s := strings.Join(nonEmpty(stat, op, threshold), " ")
	m, n := t.DatapointsToAlarm, t.EvaluationPeriods
	switch {
	case n > 0 && m > 0 && m < n && t.Period > 0:
		s += fmt.Sprintf(" in %d of %d datapoints of %d s", m, n, t.Period)
	case n > 0 && m > 0 && m < n:
		s += fmt.Sprintf(" in %d of %d datapoints", m, n)
	case n > 0 && t.Period > 0:
		s += fmt.Sprintf(" for %d × %d s", n, t.Period)
	}
	if md, ok := missingData[t.MissingData()]; ok {
		s += "; missing data " + md
	} else if v := t.MissingData(); v != "" && v != "missing" {
		s += "; missing data: " + v
	}
	return strings.TrimSpace(s)
}

// missingData spells the TreatMissingData settings other than the default
// (missing: the alarm looks further back for datapoints, and is
// INSUFFICIENT_DATA when none are there), which the condition leaves out.
var missingData = map[string]string{
	"notBreaching": "counts as not breaching",
	"breaching":    "counts as breaching",
	"ignore":       "is ignored (the alarm keeps its state)",
}

func dimensions(ds []events.CloudWatchDimension) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Name+"="+d.Value)
	}
	return strings.Join(parts, ", ")
}

// metricQuery describes one query of a metric-math alarm.
func metricQuery(q events.CloudWatchMetricDataQuery) string {
	id := orDash(q.ID)
	switch {
	case q.Expression != "":
		s := id + ": " + q.Expression
		if q.Label != "" {
			s += " (" + q.Label + ")"
		}
		return s
	default:
		m := q.MetricStat.Metric
		s := id + ": " + strings.TrimSpace(m.Namespace+" "+m.MetricName)
		if ds := dimensions(m.Dimensions); ds != "" {
			s += " [" + ds + "]"
		}
		if q.MetricStat.Stat != "" {
			s += " " + q.MetricStat.Stat
		}
		if q.MetricStat.Period > 0 {
			s += fmt.Sprintf(" over %d s", q.MetricStat.Period)
		}
		return s
	}
}

// Console links. Names go into the URL escaped, so a link never breaks out of
// Slack's <url|text> syntax.
var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)

func arnRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" || !regionRE.MatchString(parts[3]) {
		return ""
	}
	return parts[3]
}

// arnResource is what follows the last ':' of an ARN (a topic's name).
func arnResource(arn string) string {
	return arn[strings.LastIndex(arn, ":")+1:]
}

func consoleGroupURL(region, group string) string {
	if region == "" || group == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/ec2/home?region=" + region +
		"#AutoScalingGroupDetails:id=" + url.QueryEscape(group)
}

func consoleInstanceURL(region, id string) string {
	if region == "" || id == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/ec2/home?region=" + region +
		"#InstanceDetails:instanceId=" + url.QueryEscape(id)
}

func consoleAlarmURL(region, name string) string {
	if region == "" || name == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/cloudwatch/home?region=" + region +
		"#alarmsV2:alarm/" + url.PathEscape(name)
}

// link is mrkdwn for text, linked to u when links are on and u is known.
func (r renderer) link(u, text string) string {
	if text == "" {
		return ""
	}
	if !r.cfg.ConsoleLinks || u == "" {
		return esc(text)
	}
	return "<" + u + "|" + esc(text) + ">"
}

// esc escapes the three characters Slack's mrkdwn gives meaning to, so text
// from a message can never become a mention or a link.
func esc(s string) string {
	return mrkdwnEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// quote renders s (unescaped) as a mrkdwn block quote.
func quote(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = ">" + esc(l)
	}
	return strings.Join(lines, "\n")
}

// clip shortens s to at most n characters, ending in "…" when cut, and
// never inside an escape such as "&amp;".
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)[:n-1]
	out := string(runes)
	if amp := strings.LastIndexByte(out, '&'); amp >= 0 && amp >= len(out)-5 && !strings.Contains(out[amp:], ";") {
		out = out[:amp]
	}
	return out + "…"
}

func plain(s string) *slack.TextBlockObject {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.TrimSpace(s) == "" {
		s = "-"
	}
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

func mrkdwn(s string) *slack.TextBlockObject {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.TrimSpace(s) == "" {
		s = "-"
	}
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func section(s string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(clip(s, maxSection)), nil, nil)
}

// appendField adds "*label*\nvalue" unless value is empty.
func appendField(fields []*slack.TextBlockObject, label, value string) []*slack.TextBlockObject {
	if strings.TrimSpace(value) == "" || len(fields) >= maxFields {
		return fields
	}
	return append(fields, mrkdwn(clip("*"+label+"*\n"+value, maxField)))
}

func fieldsSection(fields []*slack.TextBlockObject) *slack.SectionBlock {
	if len(fields) == 0 {
		return nil
	}
	return slack.NewSectionBlock(nil, fields, nil)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
