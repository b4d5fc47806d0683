output "address" {
  description = "HOST:PORT of the primary endpoint, for the puller's redis.addr (TLS)."
  value       = "${aws_elasticache_replication_group.locks.primary_endpoint_address}:${var.port}"
}

output "auth_ssm_parameter_name" {
  description = "Name of the SSM SecureString holding the AUTH token."
  value       = aws_ssm_parameter.auth.name
}

output "auth_ssm_parameter_arn" {
  description = "ARN of the SSM SecureString holding the AUTH token (grant ssm:GetParameter on it to readers)."
  value       = aws_ssm_parameter.auth.arn
}

output "security_group_id" {
  description = "Security group of the Redis nodes."
  value       = aws_security_group.locks.id
}
