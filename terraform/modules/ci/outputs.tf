output "role_arn" {
  description = "ARN of the CI role; CI runs pkgbuild under it (AWS_ROLE_ARN or an assume-role profile)."
  value       = aws_iam_role.ci.arn
}

output "role_name" {
  description = "Name of the CI role."
  value       = aws_iam_role.ci.name
}
