variable "name" {
  description = "Name of the CI role (e.g. \"aptfleet-ci\")."
  type        = string
}

variable "trusted_principal_arns" {
  description = "IAM principals allowed to assume the role: the CI runners' instance role or the Jenkins controller's role."
  type        = list(string)
}

variable "write_policy_arn" {
  description = "The apt-repo module's write_policy_arn: publish, promote, yank and prune."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
