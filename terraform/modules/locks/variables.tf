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
  description = "Redis engine version: 7.0 or later (the roles' ACLs use read-only key patterns)."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^([7-9]|[1-9][0-9]+)[.]", var.engine_version))
    error_message = "The engine_version must be 7.0 or later: the roles' ACLs use Redis 7's read-only key patterns (%R~)."
  }
}

variable "port" {
  description = "Port Redis listens on."
  type        = number
  default     = 6379
}

variable "auth_ssm_parameter_name" {
  description = "Name of the SSM SecureString parameter the module writes the instance user's generated password to; instances read it at boot. The CI and operator users' passwords go to the same name suffixed -ci and -operator."
  type        = string
}

variable "key_prefix" {
  description = "Key prefix of every aptfleet key (the puller's redis.prefix, pkgbuild's --redis-prefix); each role's ACL allows keys under it only."
  type        = string
  default     = "aptfleet:"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.:-]+$", var.key_prefix))
    error_message = "The key_prefix must be letters, digits and _ . : - (no glob characters)."
  }
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
