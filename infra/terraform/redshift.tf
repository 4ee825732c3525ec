# Redshift Serverless for finance's marts: Spectrum reads the lake's tables through the Glue catalog
# (sql/redshift). In the private subnets, not publicly accessible, encrypted, audit logs exported.

data "aws_iam_policy_document" "redshift_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "redshift" {
  name               = "${local.name}-redshift-spectrum"
  assume_role_policy = data.aws_iam_policy_document.redshift_trust.json
}

data "aws_iam_policy_document" "redshift" {
  statement {
    sid       = "ReadTheLake"
    actions   = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
  }
  statement {
    sid       = "Keys"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.lake.arn]
  }
  statement {
    sid       = "Catalog"
    actions   = ["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions"]
    resources = local.catalog_arns
  }
}

resource "aws_iam_role_policy" "redshift" {
  role   = aws_iam_role.redshift.id
  policy = data.aws_iam_policy_document.redshift.json
}

resource "aws_redshiftserverless_namespace" "analysts" {
  namespace_name        = local.name
  db_name               = "analytics"
  admin_username        = "recon_admin"
  manage_admin_password = true
  kms_key_id            = aws_kms_key.lake.arn
  iam_roles             = [aws_iam_role.redshift.arn]
  default_iam_role_arn  = aws_iam_role.redshift.arn
  log_exports           = ["userlog", "connectionlog", "useractivitylog"]
}

resource "aws_redshiftserverless_workgroup" "analysts" {
  namespace_name       = aws_redshiftserverless_namespace.analysts.namespace_name
  workgroup_name       = local.name
  base_capacity        = var.redshift_base_capacity
  subnet_ids           = aws_subnet.private[*].id
  security_group_ids   = [aws_security_group.redshift.id]
  publicly_accessible  = false
  enhanced_vpc_routing = true
}
