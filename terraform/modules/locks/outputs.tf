output "address" {
  description = "HOST:PORT of the primary endpoint, for the puller's redis.addr (TLS)."
  value       = "${aws_elasticache_replication_group.locks.primary_endpoint_address}:${var.port}"
}

output "auth_ssm_parameter_name" {
  description = "Name of the SSM SecureString holding the instance user's password."
  value       = aws_ssm_parameter.role["instance"].name
}

output "auth_ssm_parameter_arn" {
  description = "ARN of the SSM SecureString holding the instance user's password (grant ssm:GetParameter on it to the instances)."
  value       = aws_ssm_parameter.role["instance"].arn
}

output "instance_user_name" {
  description = "Redis user of the instances, for the puller's redis.username (the fleet module's redis_username)."
  value       = aws_elasticache_user.role["instance"].user_name
}

output "user_names" {
  description = "Redis user of each role (instance, ci, operator), from the roles file."
  value       = { for role, u in aws_elasticache_user.role : role => u.user_name }
}

output "password_ssm_parameter_arns" {
  description = "ARN of the SSM SecureString holding each role's password (grant ssm:GetParameter on ci's to CI, on operator's to operators)."
  value       = { for role, p in aws_ssm_parameter.role : role => p.arn }
}

output "security_group_id" {
  description = "Security group of the Redis nodes."
  value       = aws_security_group.locks.id
}
