// Package notifier turns the messages an SNS topic delivers (Auto Scaling
// notifications, CloudWatch alarm state changes, aptfleet deploy events, and
// anything else) into Slack messages people can act on, and delivers them to a
// Slack incoming webhook.
//
// A message is recognised by its shape, never by the SNS Subject: [Decode]
// never fails, and a message it does not recognise (including one that is not
// JSON) is still shown, generically. [Render] builds a Block Kit payload with
// a plain fallback text; [Webhook] posts it, honouring Slack's rate limits; and
// [Handler] ties the two together for the Lambda runtime.
package notifier
