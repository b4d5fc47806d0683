output "topic_arn" {
  description = "ARN of the events topic: give it to the fleet (ASG notifications, alarms, the puller's deploy events)."
  value       = aws_sns_topic.events.arn
}

output "function_name" {
  description = "Name of the notifier Lambda function."
  value       = aws_lambda_function.notifier.function_name
}

output "function_arn" {
  description = "ARN of the notifier Lambda function."
  value       = aws_lambda_function.notifier.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the function."
  value       = aws_cloudwatch_log_group.notifier.name
}
