variable "name" {
  description = "Name of the Auto Scaling group and prefix of the other resources (e.g. \"hello-production\"). Instances find their Serf peers by this group name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{1,28}$", var.name))
    error_message = "The name must be 1-28 letters, digits and hyphens (it prefixes the load balancer's name)."
  }
}

variable "app" {
  description = "Debian package name of the app the instances run (e.g. \"hello\")."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9+.-]+$", var.app))
    error_message = "The app must be a Debian package name."
  }
}

variable "env" {
  description = "Environment of the fleet (e.g. \"production\"); the rolling lock and the Serf tags are per app and env."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*$", var.env))
    error_message = "The env must be letters, digits, dots, underscores and hyphens."
  }
}

variable "dist" {
  description = "apt distribution the fleet installs from. Empty means the same as env."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([A-Za-z0-9][A-Za-z0-9._-]*)?$", var.dist))
    error_message = "The dist must be letters, digits, dots, underscores and hyphens."
  }
}

variable "repo_url" {
  description = "The repository root, s3://BUCKET/PREFIX (the apt-repo module's repo_url)."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9-]{1,61}[a-z0-9](/[A-Za-z0-9._~-]+)*/?$", var.repo_url))
    error_message = "The repo_url must be s3://BUCKET/PREFIX with a bucket name without dots."
  }
}

variable "repo_read_policy_arn" {
  description = "The apt-repo module's read_policy_arn, attached to the instance role (read-only on the bucket)."
  type        = string
}

variable "keyring_base64" {
  description = "The repository's public OpenPGP keyring in binary form, base64-encoded: filebase64(\"keyring.gpg\") of `gpg --export` output (not --armor)."
  type        = string

  validation {
    condition     = length(var.keyring_base64) > 0 && can(regex("^[A-Za-z0-9+/]+=*$", var.keyring_base64))
    error_message = "The keyring_base64 must be a non-empty base64 string (filebase64 of a binary keyring)."
  }
}

variable "component" {
  description = "Repository component the instances install the app from (the apt source's Components and the puller's apps[].component)."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*$", var.component))
    error_message = "The component must be one path segment: letters, digits, dot, underscore, hyphen."
  }
}

variable "keyring_package" {
  description = "Name of the repository's keyring package (pkgbuild keyring build). When set, first boot installs it, apt and the puller trust /usr/share/keyrings/NAME.gpg, and the fleet upgrades it, so hosts follow a signing-key rotation. Empty: keyring_base64 is trusted for good."
  type        = string
  default     = ""

  validation {
    condition     = var.keyring_package == "" || can(regex("^[a-z0-9][a-z0-9+.-]+$", var.keyring_package))
    error_message = "The keyring_package must be a Debian package name."
  }
}

variable "redis_addr" {
  description = "HOST:PORT of the fleet's Redis (the locks module's address)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}$", var.redis_addr))
    error_message = "The redis_addr must be HOST:PORT."
  }
}

variable "redis_tls" {
  description = "Connect to Redis over TLS (ElastiCache in-transit encryption)."
  type        = bool
  default     = true
}

variable "redis_auth_ssm_parameter_name" {
  description = "SSM SecureString holding the Redis AUTH token (the locks module's auth_ssm_parameter_name). Empty for no AUTH."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9_./-]*$", var.redis_auth_ssm_parameter_name))
    error_message = "The redis_auth_ssm_parameter_name must be an SSM parameter name."
  }
}

variable "redis_username" {
  description = "Redis ACL user the pullers log in as (the locks module's instance_user_name). Empty for the default user."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]*$", var.redis_username))
    error_message = "The redis_username must be letters, digits and _ . -."
  }
}

variable "serf_key_ssm_parameter_name" {
  description = "SSM SecureString holding the base64 Serf gossip encryption key. Empty (the default): the module generates a 32-byte key and stores it as the SecureString /aptfleet/<name>/serf-key."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9_./-]*$", var.serf_key_ssm_parameter_name))
    error_message = "The serf_key_ssm_parameter_name must be an SSM parameter name."
  }
}

variable "kms_key_arn" {
  description = "KMS key of the SSM parameters, when it is not the AWS-managed aws/ssm key; the instances get kms:Decrypt on it."
  type        = string
  default     = ""
}

variable "sns_topic_arn" {
  description = "The events topic (the notifier module's topic_arn): Auto Scaling notifications, alarms and the puller's deploy events go there."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the fleet."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the instances run in, across availability zones. They need a route to S3, SSM, EC2 and the Debian mirrors (NAT or VPC endpoints)."
  type        = list(string)
}

variable "lb_subnet_ids" {
  description = "Subnets of the application load balancer (public ones for an internet-facing balancer)."
  type        = list(string)
}

variable "lb_internal" {
  description = "Make the load balancer internal instead of internet-facing."
  type        = bool
  default     = false
}

variable "lb_ingress_cidrs" {
  description = "CIDR blocks allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener on 443 (HTTP on 80 then redirects). Empty for plain HTTP on 80."
  type        = string
  default     = ""
}

variable "ami_id" {
  description = "AMI of the instances. Empty picks the newest official Debian 12 AMI for the architecture."
  type        = string
  default     = ""
}

variable "architecture" {
  description = "Debian architecture of the default AMI: \"amd64\" or \"arm64\" (match instance_type)."
  type        = string
  default     = "amd64"

  validation {
    condition     = contains(["amd64", "arm64"], var.architecture)
    error_message = "The architecture must be amd64 or arm64."
  }
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
  default     = "t3.small"
}

variable "root_volume_size" {
  description = "Size of the encrypted root volume in GiB."
  type        = number
  default     = 16
}

variable "min_size" {
  description = "Smallest number of instances."
  type        = number
  default     = 2
}

variable "max_size" {
  description = "Largest number of instances."
  type        = number
  default     = 6
}

variable "desired_capacity" {
  description = "Instances at creation; the scaling policies own it afterwards."
  type        = number
  default     = 2
}

variable "app_port" {
  description = "Port the app listens on, on each instance."
  type        = number
  default     = 8080
}

variable "health_check_path" {
  description = "Path of the app's health check, for the target group and the puller."
  type        = string
  default     = "/healthz"

  validation {
    condition     = can(regex("^/[A-Za-z0-9._~/-]*$", var.health_check_path))
    error_message = "The health_check_path must be an absolute URL path."
  }
}

variable "health_check_grace_period" {
  description = "Seconds a new instance has to install itself (user-data) and pass the health check."
  type        = number
  default     = 600
}

variable "deregistration_delay" {
  description = "Seconds the target group lets in-flight requests finish when a target leaves."
  type        = number
  default     = 30
}

variable "fraction" {
  description = "Fraction of the fleet that may deploy at once (the puller's rolling lock)."
  type        = number
  default     = 0.25

  validation {
    condition     = var.fraction > 0 && var.fraction <= 1
    error_message = "The fraction must be in (0, 1]."
  }
}

variable "schedule" {
  description = "The puller's cron schedule for checking the repository (robfig/cron syntax); deploy events trigger it sooner."
  type        = string
  default     = "@every 1m"

  validation {
    condition     = can(regex("^[A-Za-z0-9@*/, -]+$", var.schedule))
    error_message = "The schedule must be a cron expression or descriptor."
  }
}

variable "canary_hosts" {
  description = "Canary hosts of each new version: the first this many to take a slot deploy and bake while the rest wait; 0 for no canary stage."
  type        = number
  default     = 0

  validation {
    condition     = var.canary_hosts >= 0
    error_message = "The canary_hosts must not be negative."
  }
}

variable "canary_percent" {
  description = "Instead of canary_hosts: this percentage of the live hosts, rounded up, at least 1; 0 for unset."
  type        = number
  default     = 0

  validation {
    condition     = var.canary_percent >= 0 && var.canary_percent <= 100
    error_message = "The canary_percent must be in (0, 100], or 0 for unset."
  }
}

variable "canary_bake" {
  description = "How long the canaries serve a new version, analysed, before the rest roll (a Go duration such as \"10m\"); empty for the puller's default, 0."
  type        = string
  default     = ""
}

variable "canary_promote" {
  description = "\"auto\" (the stage ends when the bake passes) or \"manual\" (it waits for pkgbuild fleet promote-canary); empty for auto."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "auto", "manual"], var.canary_promote)
    error_message = "The canary_promote must be auto or manual."
  }
}

variable "alarms" {
  description = "CloudWatch alarm names: any in ALARM during a rollout halts it as a release failure."
  type        = list(string)
  default     = []
}

variable "window" {
  description = "Weekly window deploys start in, e.g. \"Mon-Fri 08:00-17:00 Europe/Berlin\"; empty for always."
  type        = string
  default     = ""
}

variable "validate" {
  description = "Command run as root after a restart, before the health check; non-zero is a release failure. Empty for none."
  type        = string
  default     = ""
}

variable "validate_timeout" {
  description = "Longest run of the validate command (a Go duration); empty for the puller's default, 2m."
  type        = string
  default     = ""
}

variable "cpu_scale_out_percent" {
  description = "Average CPU above which one instance is added."
  type        = number
  default     = 70
}

variable "cpu_scale_in_percent" {
  description = "Average CPU below which one instance is removed."
  type        = number
  default     = 20
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
