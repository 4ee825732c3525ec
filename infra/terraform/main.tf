# psp-recon on AWS: the S3 Delta lake, EMR Serverless for the Spark stages (RECON_SPARK_MODE=emr_serverless),
# the Glue catalog + Athena workgroup for analysts, PII salts in Secrets Manager, and (optionally)
# RDS PostgreSQL for the operational store. Airflow itself (MWAA or self-managed) reads the outputs.

locals {
  name = "psp-recon-${var.environment}"
}

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "lake" {
  description             = "${local.name} lake encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_s3_bucket" "lake" {
  bucket = "${local.name}-lake-${data.aws_caller_identity.current.account_id}"
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
    id     = "raw-to-infrequent-access"
    status = "Enabled"
    filter {
      prefix = "lake/raw/"
    }
    transition {
      days          = var.raw_retention_days
      storage_class = "STANDARD_IA"
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
  # The jobs reach the operational database (RECON_DATABASE_SECRET): run them in the database's private subnets.
  dynamic "network_configuration" {
    for_each = length(var.job_subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.job_subnet_ids
      security_group_ids = var.job_security_group_ids
    }
  }
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
  statement {
    sid       = "Lake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
  }
  statement {
    sid       = "LakeKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.lake.arn]
  }
  statement {
    sid       = "Catalog"
    actions   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartitions"]
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
  for_each    = toset(var.tenants)
  name        = "${local.name}/pii-salt/${each.key}"
  description = "PII salt of tenant ${each.key} (the secret's string value)"
  kms_key_id  = aws_kms_key.lake.arn
}

# The operational database's connection for the Spark jobs: a postgresql:// URL, or RDS's JSON (host, port,
# username, password, dbname), put once outside Terraform. Jobs read it themselves (jobs/secrets.py).
resource "aws_secretsmanager_secret" "database" {
  name        = "${local.name}/database"
  description = "PostgreSQL connection of the psp-recon Spark jobs"
  kms_key_id  = aws_kms_key.lake.arn
}

resource "aws_db_subnet_group" "recon" {
  count      = var.create_database ? 1 : 0
  name       = local.name
  subnet_ids = var.db_subnet_ids
}

resource "aws_db_instance" "recon" {
  count                               = var.create_database ? 1 : 0
  identifier                          = local.name
  engine                              = "postgres"
  engine_version                      = "16"
  instance_class                      = "db.t4g.medium"
  allocated_storage                   = 50
  max_allocated_storage               = 500
  db_name                             = "recon"
  username                            = "recon"
  manage_master_user_password         = true
  db_subnet_group_name                = aws_db_subnet_group.recon[0].name
  vpc_security_group_ids              = var.db_security_group_ids
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.lake.arn
  backup_retention_period             = 14
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${local.name}-final"
}
