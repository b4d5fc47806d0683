// Package sns publishes the agent's deploy events to an Amazon SNS topic as
// JSON (the schema of internal/event), where the notifier Lambda turns them
// into Slack messages.
package sns

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/aptfleet/aptfleet/internal/event"
	"github.com/aptfleet/aptfleet/puller"
)

var _ puller.Publisher = (*Publisher)(nil)

// API is the part of the SNS client the Publisher uses (*sns.Client
// implements it).
type API interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ API = (*sns.Client)(nil)

// Publisher sends deploy events to one topic.
type Publisher struct {
	api   API
	topic string
	fifo  bool
}

// New returns a Publisher for topicARN.
func New(api API, topicARN string) (*Publisher, error) {
	// arn:aws:sns:REGION:ACCOUNT:NAME
	if f := strings.Split(topicARN, ":"); len(f) != 6 || f[0] != "arn" || f[2] != "sns" || f[5] == "" {
		return nil, fmt.Errorf("sns topic %q: not an SNS topic ARN", topicARN)
	}
	return &Publisher{api: api, topic: topicARN, fifo: strings.HasSuffix(topicARN, ".fifo")}, nil
}

// Publish sends e as the JSON message body. The subject is a one-line
// summary for e-mail subscribers, and the message attributes (source, kind,
// app, env) let subscriptions filter. On a FIFO topic the events of one
// app/env form one message group.
func (p *Publisher) Publish(ctx context.Context, e event.Deploy) error {
	if e.Source == "" {
		e.Source = event.Source
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", e.Kind, err)
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(p.topic),
		Message:  aws.String(string(body)),
		Subject:  aws.String(Subject(e)),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"source": attr(e.Source),
			"kind":   attr(string(e.Kind)),
			"app":    attr(e.App),
			"env":    attr(e.Env),
		},
	}
	for k, v := range in.MessageAttributes {
		if *v.StringValue == "" { // SNS rejects empty attribute values
			delete(in.MessageAttributes, k)
		}
	}
	if p.fifo {
		in.MessageGroupId = aws.String(e.App + "/" + e.Env)
		in.MessageDeduplicationId = aws.String(fmt.Sprintf("%s/%s/%s/%s/%s/%d", e.App, e.Env, e.Version, e.Host, e.Kind, e.Time.UnixNano()))
	}
	if _, err := p.api.Publish(ctx, in); err != nil {
		return fmt.Errorf("publish %s event to %s: %w", e.Kind, p.topic, err)
	}
	return nil
}

// Subject is the event in one line of at most 100 printable ASCII
// characters, as SNS requires: "aptfleet hello/staging 1.4.0-1 succeeded on i-0abc".
func Subject(e event.Deploy) string {
	s := fmt.Sprintf("aptfleet %s/%s %s %s on %s", e.App, e.Env, e.Version, strings.ReplaceAll(string(e.Kind), "_", " "), e.Host)
	s = strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

func attr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}
