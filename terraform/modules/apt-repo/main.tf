# A private, versioned, encrypted bucket for the signed apt repository, and the
# two IAM policies that use it: read (instances) and write (CI).

locals {
  key_prefix = var.prefix == "" ? "" : "${var.prefix}/"
  objects    = "${aws_s3_bucket.repo.arn}/${local.key_prefix}*"
}

resource "aws_s3_bucket" "repo" {
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "repo" {
  bucket = aws_s3_bucket.repo.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "repo" {
  bucket = aws_s3_bucket.repo.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "repo" {
  bucket = aws_s3_bucket.repo.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "repo" {
  bucket = aws_s3_bucket.repo.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == "" ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn == "" ? null : var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != ""
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "repo" {
  bucket = aws_s3_bucket.repo.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.repo]
}

# Refuse plain HTTP: apt-transport-s3 and the SDK always use HTTPS.
data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.repo.arn, "${aws_s3_bucket.repo.arn}/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "repo" {
  bucket = aws_s3_bucket.repo.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.repo]
}

# Instances: read the repository (apt-transport-s3 GETs, the puller's
# conditional GET of InRelease). Nothing else.
data "aws_iam_policy_document" "read" {
  statement {
    sid       = "ReadRepository"
    actions   = ["s3:GetObject"]
    resources = [local.objects]
  }

  # Listing lets a missing optional index answer 404 (which apt skips)
  # instead of 403.
  statement {
    sid       = "ListRepository"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.repo.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == "" ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptRepository"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_policy" "read" {
  name        = "${var.bucket_name}-read"
  description = "Read the aptfleet apt repository in s3://${var.bucket_name}/${var.prefix}"
  policy      = data.aws_iam_policy_document.read.json
  tags        = var.tags
}

# CI: publish, promote, yank and prune (pkgbuild). Pool objects are written
# create-only and indexes with If-Match by the tool itself.
data "aws_iam_policy_document" "write" {
  statement {
    sid       = "ListRepository"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.repo.arn]
  }

  statement {
    sid       = "WriteRepository"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.objects]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == "" ? [] : [var.kms_key_arn]
    content {
      sid       = "EncryptRepository"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_policy" "write" {
  name        = "${var.bucket_name}-write"
  description = "Publish to the aptfleet apt repository in s3://${var.bucket_name}/${var.prefix}"
  policy      = data.aws_iam_policy_document.write.json
  tags        = var.tags
}
