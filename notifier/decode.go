package notifier

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aptfleet/aptfleet/internal/event"
)

// Kind is the shape a message was recognised as.
type Kind string

const (
	KindAutoScaling Kind = "autoscaling" // an Auto Scaling group notification
	KindAlarm       Kind = "alarm"       // a CloudWatch alarm state change
	KindDeploy      Kind = "deploy"      // an aptfleet deploy event (internal/event)
	KindOther       Kind = "other"       // anything else, shown as it came
)

// Message is one decoded SNS message. Exactly one of AutoScaling, Alarm and
// Deploy is set, matching Kind; for KindOther none is.
type Message struct {
	Kind        Kind
	AutoScaling *AutoScaling
	Alarm       *Alarm
	Deploy      *event.Deploy
	// Raw is the message exactly as received.
	Raw string
	// JSON reports whether Raw is a JSON value.
	JSON bool
}

// Auto Scaling notification types (the message's Event field).
const (
	ASLaunch         = "autoscaling:EC2_INSTANCE_LAUNCH"
	ASLaunchError    = "autoscaling:EC2_INSTANCE_LAUNCH_ERROR"
	ASTerminate      = "autoscaling:EC2_INSTANCE_TERMINATE"
	ASTerminateError = "autoscaling:EC2_INSTANCE_TERMINATE_ERROR"
	ASTest           = "autoscaling:TEST_NOTIFICATION"
)

// AutoScaling is an Auto Scaling group notification as Auto Scaling publishes
// it to SNS. aws-lambda-go's events.AutoScalingEvent is the EventBridge shape,
// a different document, so the SNS shape is declared here.
type AutoScaling struct {
	Event                string `json:"Event"` // one of the AS* constants
	Service              string `json:"Service"`
	AccountID            string `json:"AccountId"`
	AutoScalingGroupName string `json:"AutoScalingGroupName"`
	AutoScalingGroupARN  string `json:"AutoScalingGroupARN"`
	ActivityID           string `json:"ActivityId"`
	Description          string `json:"Description"`
	Cause                string `json:"Cause"`
	StatusCode           string `json:"StatusCode"`
	StatusMessage        string `json:"StatusMessage"`
	EC2InstanceID        string `json:"EC2InstanceId"`
	Origin               string `json:"Origin"`
	Destination          string `json:"Destination"`
	LifecycleTransition  string `json:"LifecycleTransition"`
	StartTime            Time   `json:"StartTime"`
	EndTime              Time   `json:"EndTime"`
	Time                 Time   `json:"Time"`
	Details              struct {
		SubnetID         string  `json:"Subnet ID"`
		AvailabilityZone string  `json:"Availability Zone"`
		InvokingAlarms   []Alarm `json:"InvokingAlarms"`
	} `json:"Details"`
}

// Alarm is a CloudWatch alarm state change, as published to SNS on its own or
// inside an Auto Scaling notification's Details.InvokingAlarms. It extends
// aws-lambda-go's payload type with what real messages carry beyond it: a
// StateChangeTime that is epoch milliseconds inside InvokingAlarms, a trigger
// whose threshold may be absent (anomaly detection) and extended statistics.
type Alarm struct {
	events.CloudWatchAlarmSNSPayload
	StateChangeTime Time    `json:"StateChangeTime"`
	Trigger         Trigger `json:"Trigger"`
}

// Trigger is an alarm's condition.
type Trigger struct {
	events.CloudWatchAlarmTrigger
	Threshold         *float64 `json:"Threshold"` // nil for anomaly detection alarms
	ThresholdMetricID string   `json:"ThresholdMetricId"`
	ExtendedStatistic string   `json:"ExtendedStatistic"`
	// DatapointsToAlarm is M of an "M out of N" alarm (N is
	// EvaluationPeriods); 0 when the message does not carry it.
	DatapointsToAlarm int64 `json:"DatapointsToAlarm"`
}

// MissingData returns how the alarm treats missing datapoints: missing,
// notBreaching, breaching or ignore ("" when the message does not say).
// CloudWatch writes the field either as the value or, as in AWS's documented
// sample, as "- TreatMissingData:                    missing".
func (t Trigger) MissingData() string {
	v := strings.TrimSpace(t.TreatMissingData)
	if rest, ok := strings.CutPrefix(v, "- TreatMissingData:"); ok {
		v = strings.TrimSpace(rest)
	}
	return v
}

// Time is a timestamp AWS writes as RFC 3339 text, as CloudWatch's
// "2006-01-02T15:04:05.000-0700", or as a number of epoch milliseconds.
// Decoding never fails: a value it cannot read is kept in Raw.
type Time struct {
	time.Time
	Raw string // the value as it came, when it could not be read as a time
}

// timeLayouts are the text forms seen in SNS messages.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"}

// UnmarshalJSON reads a string or a number; anything else leaves t unset.
func (t *Time) UnmarshalJSON(b []byte) error {
	*t = Time{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return nil
		}
		for _, layout := range timeLayouts {
			if v, err := time.Parse(layout, s); err == nil {
				t.Time = v.UTC()
				return nil
			}
		}
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			t.Time = time.UnixMilli(ms).UTC()
			return nil
		}
		t.Raw = s
		return nil
	}
	if ms, err := strconv.ParseFloat(string(b), 64); err == nil && ms > -1e15 && ms < 1e15 {
		t.Time = time.UnixMilli(int64(ms)).UTC()
		return nil
	}
	t.Raw = string(b)
	return nil
}

// String formats t for people: UTC to the second, or the raw value.
func (t Time) String() string {
	if t.IsZero() {
		return t.Raw
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// deployWire reads an event.Deploy whose time may be malformed.
type deployWire struct {
	event.Deploy
	Time Time `json:"time"`
}

// Decode recognises the shape of an SNS message and decodes it. It never
// fails: a message it cannot place is returned as KindOther. Fields of an
// unexpected type are left empty rather than failing the whole message.
func Decode(raw string) Message {
	m := Message{Kind: KindOther, Raw: raw, JSON: json.Valid([]byte(raw))}
	var top map[string]json.RawMessage
	if !m.JSON || json.Unmarshal([]byte(raw), &top) != nil {
		return m
	}
	switch {
	case stringField(top, "source") == event.Source:
		var w deployWire
		if lenient(json.Unmarshal([]byte(raw), &w)) {
			d := w.Deploy
			d.Time = w.Time.Time
			m.Kind, m.Deploy = KindDeploy, &d
		}
	case has(top, "AlarmName") && has(top, "NewStateValue"):
		var a Alarm
		if lenient(json.Unmarshal([]byte(raw), &a)) {
			m.Kind, m.Alarm = KindAlarm, &a
		}
	case strings.HasPrefix(stringField(top, "Event"), "autoscaling:") ||
		stringField(top, "Service") == "AWS Auto Scaling":
		var as AutoScaling
		if lenient(json.Unmarshal([]byte(raw), &as)) {
			m.Kind, m.AutoScaling = KindAutoScaling, &as
		}
	}
	return m
}

// lenient reports whether a decode succeeded well enough to use: a value of
// the wrong type only leaves that field empty (encoding/json goes on past it).
func lenient(err error) bool {
	var te *json.UnmarshalTypeError
	return err == nil || errors.As(err, &te)
}

func has(top map[string]json.RawMessage, key string) bool {
	v, ok := top[key]
	return ok && string(v) != "null"
}

func stringField(top map[string]json.RawMessage, key string) string {
	var s string
	if v, ok := top[key]; ok && json.Unmarshal(v, &s) == nil {
		return s
	}
	return ""
}
