# The role of the Airflow workers, scheduler and triggerer (self-managed Airflow 3.3 on ECS, EKS or EC2 in the
# private subnets, security group aws_security_group.airflow): submit and watch the Spark jobs, land files in the
# lake, register the catalog, publish alerts. MWAA is not created here: the DAGs need Airflow 3.3.

data "aws_iam_policy_document" "airflow_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = var.airflow_trusted_services
    }
  }
}

resource "aws_iam_role" "airflow" {
  name               = "${local.name}-airflow"
  assume_role_policy = data.aws_iam_policy_document.airflow_trust.json
}

data "aws_iam_policy_document" "airflow" {
  statement {
    sid       = "SparkOnEmrServerless"
    actions   = ["emr-serverless:StartJobRun", "emr-serverless:GetJobRun", "emr-serverless:CancelJobRun", "emr-serverless:GetApplication", "emr-serverless:StartApplication"]
    resources = [aws_emrserverless_application.spark.arn, "${aws_emrserverless_application.spark.arn}/jobruns/*"]
  }
  statement {
    sid       = "SparkOnGlue"
    actions   = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:GetJob", "glue:BatchStopJobRun"]
    resources = ["arn:aws:glue:${var.region}:${data.aws_caller_identity.current.account_id}:job/${aws_glue_job.stages.name}"]
  }
  statement {
    sid       = "PassTheJobRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.job.arn]
  }
  statement {
    sid       = "Lake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
  }
  statement {
    sid       = "Keys"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.lake.arn, aws_kms_key.raw.arn]
  }
  statement {
    sid       = "Catalog"
    actions   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"]
    resources = local.catalog_arns
  }
  statement {
    sid       = "AnalystViews"
    actions   = ["athena:StartQueryExecution", "athena:GetQueryExecution"]
    resources = [aws_athena_workgroup.analysts.arn]
  }
  statement {
    sid       = "Alerts"
    actions   = ["sns:Publish"]
    resources = [for t in aws_sns_topic.alerts : t.arn]
  }
  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = ["arn:aws:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}:secret:${local.name}/*"]
  }
}

resource "aws_iam_role_policy" "airflow" {
  role   = aws_iam_role.airflow.id
  policy = data.aws_iam_policy_document.airflow.json
}
