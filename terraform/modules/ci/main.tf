# The role CI assumes to publish packages: write on the repository only.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = var.trusted_principal_arns
    }
  }
}

resource "aws_iam_role" "ci" {
  name                 = var.name
  description          = "aptfleet CI: publishes to the apt repository"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "write" {
  role       = aws_iam_role.ci.name
  policy_arn = var.write_policy_arn
}
