output "recon_environment" {
  description = "The settings Airflow workers need (see README, Configuration)"
  value = {
    RECON_LAKE                       = "s3://${aws_s3_bucket.lake.bucket}/lake"
    RECON_SPARK_MODE                 = "emr_serverless"
    RECON_EMR_SERVERLESS_APP_ID      = aws_emrserverless_application.spark.id
    RECON_EMR_EXECUTION_ROLE_ARN     = aws_iam_role.job.arn
    RECON_CODE_URI                   = "s3://${aws_s3_bucket.lake.bucket}/code/psp_recon_jobs.zip"
    RECON_ENTRY_URI                  = "s3://${aws_s3_bucket.lake.bucket}/code/recon_entry.py"
    RECON_UDF_JAR_URI                = "s3://${aws_s3_bucket.lake.bucket}/code/psp-recon-udf.jar"
    RECON_PII_SALT_SECRET_PREFIX     = "${local.name}/pii-salt/"
    RECON_EVIDENCE_KEY_SECRET_PREFIX = "${local.name}/evidence-key/"
    RECON_DATABASE_SECRET            = aws_secretsmanager_secret.database.name
    RECON_RAW_KMS_KEY_ID             = aws_kms_key.raw.arn
    RECON_GLUE_JOB_NAME              = aws_glue_job.stages.name
    RECON_GLUE_DATABASE              = aws_glue_catalog_database.recon.name
    RECON_ATHENA_WORKGROUP           = aws_athena_workgroup.analysts.name
  }
}

output "glue_database" {
  value = aws_glue_catalog_database.recon.name
}

output "athena_workgroup" {
  value = aws_athena_workgroup.analysts.name
}

output "database_endpoint" {
  value = var.create_database ? aws_db_instance.recon[0].endpoint : null
}

output "network" {
  description = "Where the Airflow components run: the private subnets and their security group"
  value = {
    vpc_id                    = aws_vpc.main.id
    private_subnet_ids        = aws_subnet.private[*].id
    airflow_security_group_id = aws_security_group.airflow.id
  }
}

output "airflow_role_arn" {
  value = aws_iam_role.airflow.arn
}

output "redshift_endpoint" {
  value = aws_redshiftserverless_workgroup.analysts.endpoint
}

output "redshift_spectrum_role_arn" {
  value = aws_iam_role.redshift.arn
}

output "alert_topic_arns" {
  value = { for k, t in aws_sns_topic.alerts : k => t.arn }
}

output "jobs_image_repository" {
  value = aws_ecr_repository.jobs.repository_url
}
