// Package terraform holds the Terraform modules that provision aptfleet
// (modules/apt-repo, fleet, notifier, locks, ci) and an example wiring them
// (examples/complete). Its Go tests load the modules with
// terraform-config-inspect and hcl/v2 and check the properties that matter:
// IMDSv2, a private encrypted versioned bucket, a read-only instance role,
// the notifications, the subscribed Lambda and the shared user-data template.
package terraform
