package notifier

import (
	"encoding/json"
	"testing"
)

// TestCondition spells alarm conditions from triggers as CloudWatch sends
// them: an M out of N alarm says so (the alarm is 3 of 5, not 5 × 60 s),
// and a TreatMissingData other than the default says how missing data
// counts, in either of the two forms the field comes in.
func TestCondition(t *testing.T) {
	tests := []struct {
		name, trigger, want string
	}{
		{"n of n", `{"Statistic":"SUM","Period":60,"EvaluationPeriods":5,"DatapointsToAlarm":5,"ComparisonOperator":"GreaterThanOrEqualToThreshold","Threshold":10}`,
			"Sum ≥ 10 for 5 × 60 s"},
		{"no datapoints field", `{"Statistic":"SUM","Period":60,"EvaluationPeriods":5,"ComparisonOperator":"GreaterThanOrEqualToThreshold","Threshold":10}`,
			"Sum ≥ 10 for 5 × 60 s"},
		{"m of n", `{"Statistic":"SUM","Period":60,"EvaluationPeriods":5,"DatapointsToAlarm":3,"ComparisonOperator":"GreaterThanOrEqualToThreshold","Threshold":10}`,
			"Sum ≥ 10 in 3 of 5 datapoints of 60 s"},
		{"m of n, not breaching", `{"Statistic":"AVERAGE","Period":300,"EvaluationPeriods":3,"DatapointsToAlarm":2,"ComparisonOperator":"LessThanThreshold","Threshold":1,"TreatMissingData":"notBreaching"}`,
			"Average < 1 in 2 of 3 datapoints of 300 s; missing data counts as not breaching"},
		{"documented sample form", `{"Statistic":"AVERAGE","Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0,"TreatMissingData":"- TreatMissingData:                    breaching"}`,
			"Average > 0 for 1 × 60 s; missing data counts as breaching"},
		{"default missing is left out", `{"Statistic":"AVERAGE","Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0,"TreatMissingData":"- TreatMissingData:                    missing"}`,
			"Average > 0 for 1 × 60 s"},
		{"ignore", `{"Statistic":"MAXIMUM","Period":60,"EvaluationPeriods":10,"DatapointsToAlarm":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":90,"TreatMissingData":"ignore"}`,
			"Maximum > 90 in 1 of 10 datapoints of 60 s; missing data is ignored (the alarm keeps its state)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr Trigger
			if err := json.Unmarshal([]byte(tt.trigger), &tr); err != nil {
				t.Fatal(err)
			}
			if got := condition(tr); got != tt.want {
				t.Errorf("condition = %q, want %q", got, tt.want)
			}
		})
	}
}
