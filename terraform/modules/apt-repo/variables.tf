variable "bucket_name" {
  description = "Name of the S3 bucket holding the apt repository. No dots: apt-transport-s3 refuses bucket names with dots."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be 3-63 lowercase letters, digits and hyphens, without dots."
  }
}

variable "prefix" {
  description = "Key prefix of the repository inside the bucket (the PREFIX of s3://BUCKET/PREFIX). Empty for the bucket root."
  type        = string
  default     = "apt"

  validation {
    condition     = can(regex("^([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$", var.prefix))
    error_message = "The prefix must be slash-separated path segments without leading or trailing slashes."
  }
}

variable "kms_key_arn" {
  description = "ARN of a KMS key to encrypt the bucket with (SSE-KMS). Empty for S3-managed keys (SSE-S3). Readers then also need kms:Decrypt on it."
  type        = string
  default     = ""
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted object version is kept before it expires; versioning lets an operator restore a previous index."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Let terraform destroy the bucket even when it holds objects."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
