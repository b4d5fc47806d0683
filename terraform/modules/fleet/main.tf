# An Auto Scaling group of instances that install themselves from the apt
# repository at first boot (the shared user-data template), behind an ALB
# target group, with scaling alarms and notifications to the events topic.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_ami" "debian" {
  count = var.ami_id == "" ? 1 : 0

  most_recent = true
  owners      = ["136693071363"] # Debian

  filter {
    name   = "name"
    values = ["debian-12-${var.architecture}-*"]
  }
}

locals {
  ami_id = var.ami_id != "" ? var.ami_id : data.aws_ami.debian[0].id
  dist   = var.dist != "" ? var.dist : var.env

  # Gossip is encrypted: with the key given, or with one generated here.
  serf_key_parameter_name = var.serf_key_ssm_parameter_name != "" ? var.serf_key_ssm_parameter_name : "/aptfleet/${var.name}/serf-key"

  ssm_parameter_names = compact([var.redis_auth_ssm_parameter_name, local.serf_key_parameter_name])
  ssm_parameter_arns = [
    for n in local.ssm_parameter_names :
    "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(n, "/")}"
  ]

  # The one user-data template, shared with `pkgbuild userdata` (userdata/ in
  # the repository root). The endpoint, CA and static-key variables exist for
  # S3-compatible servers outside AWS and stay empty here.
  user_data = templatefile("${path.module}/../../../userdata/user-data.sh.tftpl", {
    app                      = var.app
    env                      = var.env
    dist                     = local.dist
    repo_url                 = var.repo_url
    keyring_base64           = var.keyring_base64
    keyring_package          = var.keyring_package
    component                = var.component
    region                   = data.aws_region.current.name
    s3_endpoint              = ""
    ca_bundle                = ""
    ssm_endpoint             = ""
    ec2_endpoint             = ""
    sns_endpoint             = ""
    aws_access_key_id        = ""
    aws_secret_access_key    = ""
    redis_addr               = var.redis_addr
    redis_tls                = var.redis_tls
    redis_auth_ssm_parameter = var.redis_auth_ssm_parameter_name
    redis_username           = var.redis_username
    serf_key_ssm_parameter   = local.serf_key_parameter_name
    serf_key                 = ""
    serf_join_asg            = var.name
    serf_join                = []
    serf_bind                = ""
    app_port                 = var.app_port
    health_url               = "http://127.0.0.1:${var.app_port}${var.health_check_path}"
    target_group_arn         = aws_lb_target_group.app.arn
    haproxy_socket           = ""
    haproxy_backend          = ""
    sns_topic_arn            = var.sns_topic_arn
    fraction                 = var.fraction
    schedule                 = var.schedule
    canary_hosts             = var.canary_hosts
    canary_percent           = var.canary_percent
    canary_bake              = var.canary_bake
    canary_promote           = var.canary_promote
    alarms                   = var.alarms
    window                   = var.window
    validate                 = var.validate
    validate_timeout         = var.validate_timeout
  })

  tags = merge(var.tags, { "aptfleet:app" = var.app, "aptfleet:env" = var.env })
}

# --- gossip key --------------------------------------------------------------

# A 32-byte Serf key (AES-256), generated unless serf_key_ssm_parameter_name
# names one, stored as a SecureString the instances read at first boot. It is
# also in the Terraform state: keep the state encrypted and private.
resource "random_id" "serf_key" {
  count = var.serf_key_ssm_parameter_name == "" ? 1 : 0

  byte_length = 32
}

resource "aws_ssm_parameter" "serf_key" {
  count = var.serf_key_ssm_parameter_name == "" ? 1 : 0

  name        = local.serf_key_parameter_name
  description = "Serf gossip encryption key of the ${var.name} fleet (base64, 32 bytes)"
  type        = "SecureString"
  key_id      = var.kms_key_arn != "" ? var.kms_key_arn : null
  value       = random_id.serf_key[0].b64_std
  tags        = local.tags
}

# --- instance role ---------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name               = "${var.name}-instance"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

# Read-only on the repository bucket.
resource "aws_iam_role_policy_attachment" "repo_read" {
  role       = aws_iam_role.instance.name
  policy_arn = var.repo_read_policy_arn
}

# What the puller and the user-data need besides the repository.
data "aws_iam_policy_document" "instance" {
  # Serf peers at boot; Describe calls take no resource-level permissions.
  statement {
    sid       = "FindSerfPeers"
    actions   = ["ec2:DescribeInstances"]
    resources = ["*"]
  }

  # Drain and restore this fleet's targets around a restart.
  statement {
    sid       = "DrainOwnTargetGroup"
    actions   = ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]
    resources = [aws_lb_target_group.app.arn]
  }

  statement {
    sid       = "WatchTargetHealth"
    actions   = ["elasticloadbalancing:DescribeTargetHealth"]
    resources = ["*"]
  }

  statement {
    sid       = "PublishDeployEvents"
    actions   = ["sns:Publish"]
    resources = [var.sns_topic_arn]
  }

  dynamic "statement" {
    for_each = length(local.ssm_parameter_arns) == 0 ? [] : [local.ssm_parameter_arns]
    content {
      sid       = "ReadOwnParameters"
      actions   = ["ssm:GetParameter"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == "" ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptOwnParameters"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "instance" {
  name   = "aptfleet-puller"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.instance.json
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-instance"
  role = aws_iam_role.instance.name
  tags = local.tags
}

# --- network -----------------------------------------------------------------

resource "aws_security_group" "lb" {
  name        = "${var.name}-lb"
  description = "Load balancer of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "lb" {
  for_each = { for pair in setproduct(var.lb_ingress_cidrs, var.certificate_arn == "" ? [80] : [80, 443]) : "${pair[0]}:${pair[1]}" => pair }

  security_group_id = aws_security_group.lb.id
  description       = "Clients"
  ip_protocol       = "tcp"
  cidr_ipv4         = each.value[0]
  from_port         = each.value[1]
  to_port           = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "lb_to_app" {
  security_group_id            = aws_security_group.lb.id
  description                  = "The app on the instances"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.instances.id
}

resource "aws_security_group" "instances" {
  name        = "${var.name}-instances"
  description = "Instances of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "app" {
  security_group_id            = aws_security_group.instances.id
  description                  = "The app, from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.lb.id
}

# Serf gossip between the instances: memberlist uses TCP and UDP on 7946.
resource "aws_vpc_security_group_ingress_rule" "serf" {
  for_each = toset(["tcp", "udp"])

  security_group_id            = aws_security_group.instances.id
  description                  = "Serf gossip (${each.value})"
  ip_protocol                  = each.value
  from_port                    = 7946
  to_port                      = 7946
  referenced_security_group_id = aws_security_group.instances.id
}

# S3, SSM, EC2, SNS, the Debian mirrors, Redis and the Serf peers.
resource "aws_vpc_security_group_egress_rule" "instances" {
  security_group_id = aws_security_group.instances.id
  description       = "Outbound"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# --- load balancer -----------------------------------------------------------

resource "aws_lb" "app" {
  name                       = var.name
  internal                   = var.lb_internal
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.lb.id]
  subnets                    = var.lb_subnet_ids
  drop_invalid_header_fields = true
  tags                       = local.tags
}

resource "aws_lb_target_group" "app" {
  name                 = var.name
  port                 = var.app_port
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay

  health_check {
    path                = var.health_check_path
    matcher             = "200-299"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = local.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.app.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = var.certificate_arn == "" ? "forward" : "redirect"
    target_group_arn = var.certificate_arn == "" ? aws_lb_target_group.app.arn : null

    dynamic "redirect" {
      for_each = var.certificate_arn == "" ? [] : [443]
      content {
        port        = tostring(redirect.value)
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "https" {
  count = var.certificate_arn == "" ? 0 : 1

  load_balancer_arn = aws_lb.app.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.app.arn
  }
}

# --- instances -----------------------------------------------------------------

resource "aws_launch_template" "fleet" {
  name_prefix            = "${var.name}-"
  image_id               = local.ami_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.instances.id]
  user_data              = base64encode(local.user_data)
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }

  # IMDSv2 only; one hop keeps the token away from containers.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = var.name })
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = length(local.user_data) <= 16384
      error_message = "The rendered user-data exceeds EC2's 16 KB limit."
    }
  }
}

resource "aws_autoscaling_group" "fleet" {
  name                      = var.name
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.app.arn]
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_period
  enabled_metrics           = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupTotalInstances"]

  launch_template {
    id      = aws_launch_template.fleet.id
    version = aws_launch_template.fleet.latest_version
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 90
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = var.name })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_autoscaling_notification" "fleet" {
  group_names = [aws_autoscaling_group.fleet.name]
  topic_arn   = var.sns_topic_arn

  notifications = [
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
  ]
}

# --- scaling -----------------------------------------------------------------

resource "aws_autoscaling_policy" "scale_out" {
  name                   = "${var.name}-scale-out"
  autoscaling_group_name = aws_autoscaling_group.fleet.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = 1
  cooldown               = 300
}

resource "aws_autoscaling_policy" "scale_in" {
  name                   = "${var.name}-scale-in"
  autoscaling_group_name = aws_autoscaling_group.fleet.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = -1
  cooldown               = 300
}

resource "aws_cloudwatch_metric_alarm" "cpu_high" {
  alarm_name          = "${var.name}-cpu-high"
  alarm_description   = "Average CPU of ${var.name} above ${var.cpu_scale_out_percent}%: add an instance"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 3
  threshold           = var.cpu_scale_out_percent
  comparison_operator = "GreaterThanThreshold"
  dimensions          = { AutoScalingGroupName = aws_autoscaling_group.fleet.name }
  alarm_actions       = [aws_autoscaling_policy.scale_out.arn, var.sns_topic_arn]
  ok_actions          = [var.sns_topic_arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "cpu_low" {
  alarm_name          = "${var.name}-cpu-low"
  alarm_description   = "Average CPU of ${var.name} below ${var.cpu_scale_in_percent}%: remove an instance"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.cpu_scale_in_percent
  comparison_operator = "LessThanThreshold"
  dimensions          = { AutoScalingGroupName = aws_autoscaling_group.fleet.name }
  alarm_actions       = [aws_autoscaling_policy.scale_in.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_hosts" {
  alarm_name          = "${var.name}-unhealthy-hosts"
  alarm_description   = "Targets of ${var.name} failing the ${var.health_check_path} health check"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  dimensions = {
    TargetGroup  = aws_lb_target_group.app.arn_suffix
    LoadBalancer = aws_lb.app.arn_suffix
  }
  alarm_actions = [var.sns_topic_arn]
  ok_actions    = [var.sns_topic_arn]
  tags          = local.tags
}
