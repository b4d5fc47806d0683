output "bucket_name" {
  description = "Name of the repository bucket."
  value       = aws_s3_bucket.repo.id
}

output "bucket_arn" {
  description = "ARN of the repository bucket."
  value       = aws_s3_bucket.repo.arn
}

output "repo_url" {
  description = "The repository root as pkgbuild and the puller address it: s3://BUCKET/PREFIX."
  value       = var.prefix == "" ? "s3://${aws_s3_bucket.repo.id}" : "s3://${aws_s3_bucket.repo.id}/${var.prefix}"
}

output "read_policy_arn" {
  description = "ARN of the IAM policy that reads the repository (attach to the instance role)."
  value       = aws_iam_policy.read.arn
}

output "write_policy_arn" {
  description = "ARN of the IAM policy that publishes to the repository (attach to the CI role)."
  value       = aws_iam_policy.write.arn
}
