package puller

import (
	"context"
	"time"
)

// Alarm is one CloudWatch alarm's state.
type Alarm struct {
	Name    string    `json:"name"`
	State   string    `json:"state"` // "OK", "ALARM", "INSUFFICIENT_DATA"
	Reason  string    `json:"reason,omitempty"`
	Updated time.Time `json:"updated"`
}

// AlarmStateAlarm is the state that halts a rollout.
const AlarmStateAlarm = "ALARM"

// Alarms reads the named alarms' states (puller/cloudwatch); names missing
// from the answer do not exist.
type Alarms interface {
	Alarms(ctx context.Context, names []string) ([]Alarm, error)
}

// Validator is an app's validate hook: run after the restart and before the
// health check of every move to a version; an error is a release failure,
// and output is what the hook printed (its tail), for the event and the
// journal.
type Validator interface {
	Validate(ctx context.Context, app, version string) (output string, err error)
}
