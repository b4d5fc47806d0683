package notifier_test

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aptfleet/aptfleet/notifier"
)

func ExampleRender() {
	rec := events.SNSEntity{
		TopicArn: "arn:aws:sns:eu-west-1:111122223333:aptfleet-events",
		Message: `{"source":"aptfleet.deploy","kind":"halted","app":"hello","env":"production",` +
			`"version":"1.4.0-1","host":"i-0abc","reason":"health check failed","time":"2026-11-20T13:02:32Z"}`,
	}
	msg := notifier.Decode(rec.Message)
	payload := notifier.Render(rec, msg, notifier.DefaultConfig())
	fmt.Println(msg.Kind)
	fmt.Println(payload.Text)
	fmt.Println(payload.Attachments[0].Color)
	// Output:
	// deploy
	// <!here> Rollout of hello 1.4.0-1 to production halted: health check failed
	// #d00000
}

func ExampleParseCause() {
	c := notifier.ParseCause("At 2026-11-20T09:14:00Z a monitor alarm cpu-high in state ALARM triggered policy scale-out " +
		"changing the desired capacity from 3 to 4.  At 2026-11-20T09:14:04Z an instance was started in response to a " +
		"difference between desired and actual capacity, increasing the capacity from 3 to 4.")
	fmt.Println(c.Trigger)
	fmt.Printf("%d -> %d in %d steps\n", c.From, c.To, len(c.Steps))
	// Output:
	// alarm cpu-high (ALARM) triggered policy scale-out
	// 3 -> 4 in 2 steps
}
