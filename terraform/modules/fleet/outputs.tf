output "autoscaling_group_name" {
  description = "Name of the Auto Scaling group."
  value       = aws_autoscaling_group.fleet.name
}

output "target_group_arn" {
  description = "ARN of the ALB target group the instances serve in."
  value       = aws_lb_target_group.app.arn
}

output "lb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.app.dns_name
}

output "instance_role_name" {
  description = "Name of the instances' IAM role (read-only on the repository)."
  value       = aws_iam_role.instance.name
}

output "instance_role_arn" {
  description = "ARN of the instances' IAM role."
  value       = aws_iam_role.instance.arn
}

output "instance_security_group_id" {
  description = "Security group of the instances: allow it into Redis (the locks module's client_security_group_ids)."
  value       = aws_security_group.instances.id
}

output "user_data" {
  description = "The rendered first-boot script (no secrets in it), for review; `pkgbuild userdata` renders the same bytes for the same inputs."
  value       = local.user_data
}

output "serf_key_ssm_parameter_name" {
  description = "SSM SecureString holding the fleet's Serf gossip key (generated unless given): what `pkgbuild publish|promote --announce-key-file` needs, read from it."
  value       = local.serf_key_parameter_name
}
