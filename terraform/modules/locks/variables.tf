variable "name" {
  description = "Name of the replication group and prefix of the other resources (e.g. \"hello-production-locks\")."
  type        = string
}

variable "vpc_id" {
  description = "VPC the Redis nodes run in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the Redis nodes, one per availability zone."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect to Redis on its port (the fleet's instances, the CI runners that wait for rollouts)."
  type        = list(string)
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.micro"
}

variable "num_cache_clusters" {
  description = "Number of nodes (primary plus replicas). 2 or more enables automatic failover across zones."
  type        = number
  default     = 2
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "port" {
  description = "Port Redis listens on."
  type        = number
  default     = 6379
}

variable "auth_ssm_parameter_name" {
  description = "Name of the SSM SecureString parameter the module writes the generated AUTH token to; instances read it at boot."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest and for the SSM parameter. Empty for AWS-managed keys."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
