// Package cloudwatch reads the CloudWatch alarms that gate a rollout, and
// shares what it read through Redis so that a fleet makes one DescribeAlarms
// call per app/env per poll interval, not one per host.
//
// Reader makes the call (aws-sdk-go-v2): one DescribeAlarms for the whole
// list, metric and composite alarms. Shared puts a Reader behind one Redis
// hash per app/env, {prefix}{app}:{env}:alarms, which this package alone
// writes: the answer of the latest poll, when it was made (Redis server
// time), and a claim. A host that finds the answer older than the interval
// claims the next poll with an atomic script, makes the call and writes the
// answer back; every other host reads the cached answer, so at most one call
// per interval reaches CloudWatch however many hosts ask.
package cloudwatch

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/aptfleet/aptfleet/puller"
)

// API is the one CloudWatch call Reader makes.
type API interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// Reader reads alarm states from CloudWatch.
type Reader struct{ api API }

var _ puller.Alarms = (*Reader)(nil)

// NewReader returns a Reader on api (a *cloudwatch.Client).
func NewReader(api API) *Reader { return &Reader{api: api} }

// New returns a Reader on a client built from cfg; endpoint, when set, is
// the base URL of the CloudWatch API (else the SDK's, AWS_ENDPOINT_URL_CLOUDWATCH...).
func New(cfg aws.Config, endpoint string) *Reader {
	return NewReader(cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}))
}

// Alarms makes one DescribeAlarms call for names (at most 100, the API's
// page size) and returns the states of those that exist, metric and
// composite alike.
func (r *Reader) Alarms(ctx context.Context, names []string) ([]puller.Alarm, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if len(names) > 100 {
		return nil, fmt.Errorf("cloudwatch: %d alarm names, at most 100 in one call", len(names))
	}
	out, err := r.api.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{
		AlarmNames: names,
		AlarmTypes: []types.AlarmType{types.AlarmTypeMetricAlarm, types.AlarmTypeCompositeAlarm},
		MaxRecords: aws.Int32(100),
	})
	if err != nil {
		return nil, fmt.Errorf("cloudwatch DescribeAlarms: %w", err)
	}
	var alarms []puller.Alarm
	add := func(name *string, state types.StateValue, reason *string, at *time.Time) {
		a := puller.Alarm{Name: aws.ToString(name), State: string(state), Reason: aws.ToString(reason)}
		if at != nil {
			a.Updated = at.UTC()
		}
		alarms = append(alarms, a)
	}
	for _, m := range out.MetricAlarms {
		add(m.AlarmName, m.StateValue, m.StateReason, m.StateUpdatedTimestamp)
	}
	for _, c := range out.CompositeAlarms {
		add(c.AlarmName, c.StateValue, c.StateReason, c.StateUpdatedTimestamp)
	}
	return alarms, nil
}
