# psp-recon on AWS: the S3 Delta lake, EMR Serverless (or Glue) for the Spark stages, the Glue catalog + Athena
# workgroup and Redshift Serverless for analysts, PII salts and the jobs' database connection in Secrets Manager,
# RDS PostgreSQL for the operational store (network.tf, database.tf), the Airflow workers' role (airflow.tf), alert
# topics, alarms and a dashboard (alerts.tf). Airflow itself (self-managed, Airflow 3.3) reads the outputs.

locals {
  name = "psp-recon-${var.environment}"
  # The Glue catalog, the lake's database and its tables: what the jobs, Airflow and Redshift read or register.
  catalog_arns = [
    "arn:aws:glue:${var.region}:${data.aws_caller_identity.current.account_id}:catalog",
    aws_glue_catalog_database.recon.arn,
    "arn:aws:glue:${var.region}:${data.aws_caller_identity.current.account_id}:table/${aws_glue_catalog_database.recon.name}/*",
  ]
}

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "lake" {
  description             = "${local.name} lake, logs, secrets and alert topics encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

# The account administers the key (IAM policies grant its use to the roles); the AWS services that write
# encrypted data for us (CloudWatch Logs, alarms and EventBridge publishing to the encrypted topics) may use it.
data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_111:a key policy's resource "*" is the key itself; the account statement is AWS's default key policy
  # checkov:skip=CKV_AWS_356:a key policy's resource "*" is the key itself
  # checkov:skip=CKV_AWS_109:the account administers its own key (AWS's default key policy); roles get use through IAM
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "Services"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com"]
    }
  }
}

# The raw zone (lake/raw/) keeps PSP and bank files as delivered, and those may hold card numbers: it is the one
# place card data may be at rest. Its objects are encrypted with a key of their own, which only the roles that
# land (Airflow) and parse (the jobs) may use: analysts, Athena and Redshift read the lake's other tables and
# cannot decrypt a raw file even when they can list it. Raw files expire after var.raw_card_data_retention_days.
resource "aws_kms_key" "raw" {
  description             = "${local.name} raw zone (files as delivered: may hold card numbers)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.raw_key.json
}

data "aws_iam_policy_document" "raw_key" {
  # checkov:skip=CKV_AWS_111:a key policy's resource "*" is the key itself; only the key's administration is the account's
  # checkov:skip=CKV_AWS_356:a key policy's resource "*" is the key itself
  # checkov:skip=CKV_AWS_109:the account administers the key (no use: the Use statement names the only roles that may)
  statement {
    sid = "Administer"
    actions = ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
      "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "Use"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.airflow.arn, aws_iam_role.job.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = data.aws_iam_policy_document.lake_bucket.json
}

# Nothing enters the raw zone unless encrypted with the raw key; nothing is read from the bucket without TLS.
data "aws_iam_policy_document" "lake_bucket" {
  statement {
    sid       = "RawZoneKeyOnly"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.lake.arn}/lake/raw/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.raw.arn]
    }
  }
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket" "lake" {
  # checkov:skip=CKV2_AWS_62:nothing consumes bucket events: the DAGs know what they wrote, the ingest DAG polls its sources
  # checkov:skip=CKV_AWS_144:recovery is versioning (every object version kept) and Delta's log in the same region; a replica in a second region is a choice per deployment, not a default
  bucket = "${local.name}-lake-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_logging" "lake" {
  bucket        = aws_s3_bucket.lake.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "lake/"
}

# Server access logs of the lake bucket (S3 delivers them only to a bucket with S3-managed encryption).
resource "aws_s3_bucket" "access_logs" {
  # checkov:skip=CKV_AWS_18:this is the access-log bucket; logging its own access would log the logging
  # checkov:skip=CKV_AWS_144:access logs are kept in the region of the bucket they describe
  # checkov:skip=CKV_AWS_145:S3 server access log delivery does not support SSE-KMS target buckets (SSE-S3 is set)
  # checkov:skip=CKV2_AWS_62:nothing consumes the access logs' bucket events
  bucket = "${local.name}-access-logs-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.lake.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    id     = "raw-to-infrequent-access-then-expire"
    status = "Enabled"
    filter {
      prefix = "lake/raw/"
    }
    transition {
      days          = var.raw_retention_days
      storage_class = "STANDARD_IA"
    }
    # card data at rest is kept no longer than the reconciliation needs it (reprocessing, audit of the year)
    expiration {
      days = var.raw_card_data_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

resource "aws_emrserverless_application" "spark" {
  name          = local.name
  release_label = var.emr_release_label
  type          = "spark"
  maximum_capacity {
    cpu    = var.emr_max_vcpu
    memory = var.emr_max_memory
  }
  auto_start_configuration {
    enabled = true
  }
  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = 15
  }
  # The jobs' image: EMR's Spark with Python 3.11 and the job's packages (infra/emr/Dockerfile, pushed to the
  # repository below; set job_image_tag once it is there).
  dynamic "image_configuration" {
    for_each = var.job_image_tag == null ? [] : [var.job_image_tag]
    content {
      image_uri = "${aws_ecr_repository.jobs.repository_url}:${image_configuration.value}"
    }
  }
  # The jobs reach the operational database (RECON_DATABASE_SECRET): they run in the private subnets.
  network_configuration {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.jobs.id]
  }
}

resource "aws_ecr_repository" "jobs" {
  name                 = "${local.name}-jobs"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.lake.arn
  }
}

data "aws_iam_policy_document" "jobs_image" {
  statement {
    sid     = "EmrServerlessPullsTheImage"
    actions = ["ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_ecr_repository_policy" "jobs" {
  repository = aws_ecr_repository.jobs.name
  policy     = data.aws_iam_policy_document.jobs_image.json
}

data "aws_iam_policy_document" "emr_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com", "glue.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "job" {
  name               = "${local.name}-spark-job"
  assume_role_policy = data.aws_iam_policy_document.emr_trust.json
}

data "aws_iam_policy_document" "job" {
  # checkov:skip=CKV_AWS_111:only GlueJobNetwork has resource "*": EC2 network-interface and describe calls take no resource-level restriction
  # checkov:skip=CKV_AWS_356:only GlueJobNetwork has resource "*": EC2 network-interface and describe calls take no resource-level restriction
  statement {
    sid       = "Lake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
  }
  statement {
    sid       = "LakeKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.lake.arn, aws_kms_key.raw.arn]
  }
  statement {
    sid       = "Catalog"
    actions   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"]
    resources = local.catalog_arns
  }
  statement {
    sid     = "GlueJobCode"
    actions = ["glue:GetConnection", "glue:GetJob"]
    resources = [
      "arn:aws:glue:${var.region}:${data.aws_caller_identity.current.account_id}:catalog",
      "arn:aws:glue:${var.region}:${data.aws_caller_identity.current.account_id}:connection/${local.name}-vpc",
      "arn:aws:glue:${var.region}:${data.aws_caller_identity.current.account_id}:job/${local.name}",
    ]
  }
  # A Glue job in the VPC (its NETWORK connection) creates and removes its network interfaces itself; EC2's
  # network-interface and describe calls take no resource-level restriction.
  statement {
    sid = "GlueJobNetwork"
    actions = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcEndpoints",
    "ec2:DescribeRouteTables", "ec2:CreateTags"]
    resources = ["*"]
  }
  statement {
    sid     = "Secrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      "arn:aws:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}:secret:${local.name}/pii-salt/*",
      aws_secretsmanager_secret.database.arn,
    ]
  }
  statement {
    sid       = "JobLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:aws:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws-glue/*"]
  }
}

resource "aws_iam_role_policy" "job" {
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

# RECON_SPARK_MODE=glue: one Glue job whose script is the entry; each stage is a run of it with its own
# --recon_job argument (jobs/remote.py renders the rest: archive, JVM functions jar, Delta settings).
resource "aws_glue_job" "stages" {
  name              = local.name
  role_arn          = aws_iam_role.job.arn
  glue_version      = "5.0"
  worker_type       = "G.1X"
  number_of_workers = var.glue_workers
  command {
    name            = "glueetl"
    script_location = "s3://${aws_s3_bucket.lake.bucket}/code/recon_entry.py"
    python_version  = "3"
  }
  default_arguments = {
    "--datalake-formats"                 = "delta"
    "--enable-continuous-cloudwatch-log" = "true"
    "--job-bookmark-option"              = "job-bookmark-disable"
  }
  execution_property {
    max_concurrent_runs = 10
  }
  connections            = [aws_glue_connection.vpc.name]
  security_configuration = aws_glue_security_configuration.jobs.name
}

# A Glue job runs in the private subnets through a NETWORK connection (the database is reached from there).
resource "aws_glue_connection" "vpc" {
  name            = "${local.name}-vpc"
  connection_type = "NETWORK"
  physical_connection_requirements {
    availability_zone      = aws_subnet.private[0].availability_zone
    subnet_id              = aws_subnet.private[0].id
    security_group_id_list = [aws_security_group.jobs.id]
  }
}

resource "aws_glue_security_configuration" "jobs" {
  name = local.name
  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = aws_kms_key.lake.arn
    }
    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = aws_kms_key.lake.arn
    }
    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = aws_kms_key.lake.arn
    }
  }
}

resource "aws_glue_catalog_database" "recon" {
  name        = replace(local.name, "-", "_")
  description = "psp-recon Delta tables (silver/gold) for Athena and Redshift Spectrum"
}

resource "aws_athena_workgroup" "analysts" {
  name = local.name
  configuration {
    enforce_workgroup_configuration = true
    result_configuration {
      output_location = "s3://${aws_s3_bucket.lake.bucket}/athena-results/"
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.lake.arn
      }
    }
  }
}

# One secret per tenant, "<RECON_PII_SALT_SECRET_PREFIX><tenant>": its string value is the tenant's PII salt (at
# least 16 characters, e.g. `openssl rand -hex 32`, put once with `aws secretsmanager put-secret-value`; a salt that
# changed would hash the same customer differently). Jobs read it themselves (jobs/privacy.py, tenant_salt).
resource "aws_secretsmanager_secret" "pii_salt" {
  # checkov:skip=CKV2_AWS_57:a salt that rotated would hash the same customer differently from one day to the next: it must never change
  for_each    = toset(var.tenants)
  name        = "${local.name}/pii-salt/${each.key}"
  description = "PII salt of tenant ${each.key} (the secret's string value)"
  kms_key_id  = aws_kms_key.lake.arn
}

# One secret per tenant, "<RECON_EVIDENCE_KEY_SECRET_PREFIX><tenant>": the Ed25519 private key (32 raw bytes, base64,
# e.g. `openssl rand -base64 32`, put once) that signs the tenant's evidence packs; Airflow's workers read it
# (jobs/evidence.py), the jobs never do. Its public key is registered in PostgreSQL when the first pack is built.
resource "aws_secretsmanager_secret" "evidence_key" {
  # checkov:skip=CKV2_AWS_57:the packs signed with a key are verified against it for years: a new key is registered beside the old one by hand, not rotated by a Lambda
  for_each    = toset(var.tenants)
  name        = "${local.name}/evidence-key/${each.key}"
  description = "Evidence pack signing key of tenant ${each.key} (Ed25519, base64)"
  kms_key_id  = aws_kms_key.lake.arn
}

# The operational database's connection for the Spark jobs: a postgresql:// URL, or RDS's JSON (host, port,
# username, password, dbname), put once outside Terraform. Jobs read it themselves (jobs/secrets.py).
resource "aws_secretsmanager_secret" "database" {
  # checkov:skip=CKV2_AWS_57:it holds the jobs' database role's connection; the operator rotates that role's password and this value together (no rotation Lambda is deployed)
  name        = "${local.name}/database"
  description = "PostgreSQL connection of the psp-recon Spark jobs"
  kms_key_id  = aws_kms_key.lake.arn
}
