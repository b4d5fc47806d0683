variable "region" {
  description = "AWS region of the whole stack."
  type        = string
}

variable "name" {
  description = "Name of the stack; prefixes every resource (e.g. \"aptfleet\")."
  type        = string
  default     = "aptfleet"
}

variable "app" {
  description = "Debian package name of the app the fleet runs."
  type        = string
  default     = "hello"
}

variable "env" {
  description = "Environment (and apt distribution) of the fleet."
  type        = string
  default     = "production"
}

variable "bucket_name" {
  description = "Name of the repository bucket (globally unique, no dots)."
  type        = string
}

variable "keyring_file" {
  description = "Path of the repository's binary public keyring (gpg --export of the signing key)."
  type        = string
}

variable "lambda_zip" {
  description = "Path of the notifier zip built by `make lambda`."
  type        = string
  default     = "../../../dist/lambda/notifier_linux_arm64.zip"
}

variable "slack_webhook_ssm_parameter_name" {
  description = "SSM SecureString holding the Slack webhook URL, created beforehand with aws ssm put-parameter."
  type        = string
  default     = "/aptfleet/slack-webhook"
}

variable "vpc_id" {
  description = "VPC of the stack."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints) for the instances and Redis."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets for the load balancer."
  type        = list(string)
}

variable "ci_principal_arns" {
  description = "IAM principals (the CI runners' role) allowed to assume the publishing role."
  type        = list(string)
}
