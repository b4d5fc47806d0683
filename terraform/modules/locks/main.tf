# ElastiCache Redis for the rolling lock, the broken marks and the fleet
# state: TLS in transit, AUTH token generated here and kept in SSM (never in
# user-data), encrypted at rest.

resource "random_password" "auth" {
  length  = 64
  special = false
}

resource "aws_ssm_parameter" "auth" {
  name        = var.auth_ssm_parameter_name
  description = "AUTH token of the ${var.name} Redis replication group"
  type        = "SecureString"
  value       = random_password.auth.result
  key_id      = var.kms_key_arn == "" ? null : var.kms_key_arn
  tags        = var.tags
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
  auth_token                 = random_password.auth.result
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn == "" ? null : var.kms_key_arn

  snapshot_retention_limit = 1
  apply_immediately        = true
  tags                     = var.tags
}
