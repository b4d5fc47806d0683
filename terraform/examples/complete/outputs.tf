output "repo_url" {
  description = "Where CI publishes: pkgbuild publish --repo <this>."
  value       = module.repo.repo_url
}

output "ci_role_arn" {
  description = "Role CI assumes to publish."
  value       = module.ci.role_arn
}

output "events_topic_arn" {
  description = "The events topic the Slack notifier is subscribed to."
  value       = module.notifier.topic_arn
}

output "redis_addr" {
  description = "Redis for pkgbuild promote --wait-rollout and puller status --fleet (TLS, AUTH token in SSM)."
  value       = module.locks.address
}

output "lb_dns_name" {
  description = "The app's load balancer."
  value       = module.fleet.lb_dns_name
}

output "autoscaling_group_name" {
  description = "The fleet's Auto Scaling group."
  value       = module.fleet.autoscaling_group_name
}
