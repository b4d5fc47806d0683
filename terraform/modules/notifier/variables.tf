variable "name" {
  description = "Name of the SNS topic and the Lambda function (e.g. \"aptfleet-events\")."
  type        = string
}

variable "lambda_zip" {
  description = "Path of the notifier's deployment package, built by `make lambda` (dist/lambda/notifier_linux_<arch>.zip, holding the `bootstrap` binary)."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture matching the zip: \"arm64\" or \"x86_64\"."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "The architecture must be arm64 or x86_64."
  }
}

variable "slack_webhook_ssm_parameter_name" {
  description = "Name of the SSM SecureString holding the Slack webhook URL. Create it outside Terraform (aws ssm put-parameter --type SecureString) so the URL never enters the state."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the webhook parameter, when it is not the AWS-managed aws/ssm key; the function gets kms:Decrypt on it."
  type        = string
  default     = ""
}

variable "log_retention_days" {
  description = "Days the function's CloudWatch logs are kept."
  type        = number
  default     = 30
}

variable "timeout_seconds" {
  description = "Function timeout; Slack rate-limit waits (Retry-After) stay within it."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
