# The whole aptfleet stack: repository bucket, CI publishing role, events
# topic with the Slack notifier, Redis for the rolling lock, and the fleet.

module "repo" {
  source = "../../modules/apt-repo"

  bucket_name = var.bucket_name
}

module "ci" {
  source = "../../modules/ci"

  name                   = "${var.name}-ci"
  trusted_principal_arns = var.ci_principal_arns
  write_policy_arn       = module.repo.write_policy_arn
}

module "notifier" {
  source = "../../modules/notifier"

  name                             = "${var.name}-events"
  lambda_zip                       = var.lambda_zip
  slack_webhook_ssm_parameter_name = var.slack_webhook_ssm_parameter_name
}

module "locks" {
  source = "../../modules/locks"

  name                      = "${var.name}-locks"
  vpc_id                    = var.vpc_id
  subnet_ids                = var.private_subnet_ids
  client_security_group_ids = [module.fleet.instance_security_group_id]
  auth_ssm_parameter_name   = "/${var.name}/redis-auth"
}

module "fleet" {
  source = "../../modules/fleet"

  name = "${var.app}-${var.env}"
  app  = var.app
  env  = var.env

  repo_url             = module.repo.repo_url
  repo_read_policy_arn = module.repo.read_policy_arn
  keyring_base64       = filebase64(var.keyring_file)

  redis_addr                    = module.locks.address
  redis_tls                     = true
  redis_auth_ssm_parameter_name = module.locks.auth_ssm_parameter_name
  redis_username                = module.locks.instance_user_name

  sns_topic_arn = module.notifier.topic_arn

  vpc_id        = var.vpc_id
  subnet_ids    = var.private_subnet_ids
  lb_subnet_ids = var.public_subnet_ids
}
