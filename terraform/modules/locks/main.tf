# ElastiCache Redis for the rolling lock, the broken marks and the fleet
# state: TLS in transit, one user per role with passwords generated here and
# kept in SSM (never in user-data), encrypted at rest.

# One ElastiCache RBAC user per role (instances, CI, operators), each with the
# ACL of the roles file shared with the docs and the tests, and a password of
# its own in an SSM SecureString. The instances' password keeps the parameter
# the instances read at boot (auth_ssm_parameter_name).
locals {
  roles = jsondecode(templatefile("${path.module}/roles.json.tftpl", { prefix = var.key_prefix })).roles

  password_parameter_names = {
    for role in keys(local.roles) :
    role => role == "instance" ? var.auth_ssm_parameter_name : "${var.auth_ssm_parameter_name}-${role}"
  }
}

resource "random_password" "role" {
  for_each = local.roles

  length  = 64
  special = false
}

resource "aws_ssm_parameter" "role" {
  for_each = local.roles

  name        = local.password_parameter_names[each.key]
  description = "Password of the ${each.value.user_name} Redis user (${each.key}) of ${var.name}"
  type        = "SecureString"
  value       = random_password.role[each.key].result
  key_id      = var.kms_key_arn == "" ? null : var.kms_key_arn
  tags        = var.tags
}

moved {
  from = random_password.auth
  to   = random_password.role["instance"]
}

moved {
  from = aws_ssm_parameter.auth
  to   = aws_ssm_parameter.role["instance"]
}

resource "aws_elasticache_user" "role" {
  for_each = local.roles

  user_id       = "${var.name}-${each.key}"
  user_name     = each.value.user_name
  engine        = "REDIS"
  access_string = each.value.access_string

  authentication_mode {
    type      = "password"
    passwords = [random_password.role[each.key].result]
  }

  tags = var.tags
}

# ElastiCache requires a user named "default" in every user group: this one
# is switched off, so a client that does not name its user gets nothing.
resource "random_password" "default_user" {
  length  = 64
  special = false
}

resource "aws_elasticache_user" "default" {
  user_id       = "${var.name}-default"
  user_name     = "default"
  engine        = "REDIS"
  access_string = "off -@all"

  authentication_mode {
    type      = "password"
    passwords = [random_password.default_user.result]
  }

  tags = var.tags
}

resource "aws_elasticache_user_group" "locks" {
  user_group_id = var.name
  engine        = "REDIS"
  user_ids      = concat([aws_elasticache_user.default.user_id], [for u in aws_elasticache_user.role : u.user_id])
  tags          = var.tags
}

resource "aws_elasticache_subnet_group" "locks" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "locks" {
  name        = var.name
  description = "Redis for ${var.name}"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = toset(var.client_security_group_ids)

  security_group_id            = aws_security_group.locks.id
  description                  = "Redis clients"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = each.value
}

resource "aws_elasticache_replication_group" "locks" {
  replication_group_id = var.name
  description          = "aptfleet rolling locks and fleet state"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  num_cache_clusters   = var.num_cache_clusters
  port                 = var.port

  subnet_group_name  = aws_elasticache_subnet_group.locks.name
  security_group_ids = [aws_security_group.locks.id]

  automatic_failover_enabled = var.num_cache_clusters > 1
  multi_az_enabled           = var.num_cache_clusters > 1

  transit_encryption_enabled = true
  user_group_ids             = [aws_elasticache_user_group.locks.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn == "" ? null : var.kms_key_arn

  snapshot_retention_limit = 1
  apply_immediately        = true
  tags                     = var.tags
}
