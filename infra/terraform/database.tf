# The operational store: RDS PostgreSQL 16 in the private subnets, Multi-AZ, encrypted, point-in-time recovery
# (automated backups for 14 days), reached only by the Airflow workers and the Spark jobs (network.tf). The master
# password is managed by RDS in Secrets Manager. The master user owns the tables: it runs `recon db migrate`
# (RECON_DATABASE_ADMIN_URL), which creates the roles recon_app and recon_platform (row-level security, V006);
# then the application's login is created once (CREATE ROLE recon_worker LOGIN PASSWORD ...; GRANT recon_app TO
# recon_worker) and its URL put in the jobs' connection secret (main.tf, aws_secretsmanager_secret.database) and
# the workers' RECON_DATABASE_URL. The application refuses to connect as the owner.

resource "aws_db_subnet_group" "recon" {
  count      = var.create_database ? 1 : 0
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "recon" {
  count  = var.create_database ? 1 : 0
  name   = local.name
  family = "postgres16"
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

resource "aws_db_instance" "recon" {
  count                               = var.create_database ? 1 : 0
  identifier                          = local.name
  engine                              = "postgres"
  engine_version                      = "16"
  instance_class                      = var.db_instance_class
  allocated_storage                   = 50
  max_allocated_storage               = 500
  db_name                             = "recon"
  username                            = "recon"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.lake.arn
  multi_az                            = true
  publicly_accessible                 = false
  db_subnet_group_name                = aws_db_subnet_group.recon[0].name
  parameter_group_name                = aws_db_parameter_group.recon[0].name
  vpc_security_group_ids              = [aws_security_group.database.id]
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.lake.arn
  backup_retention_period             = 14
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.lake.arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring[0].arn
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${local.name}-final"
}

data "aws_iam_policy_document" "rds_monitoring_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  count               = var.create_database ? 1 : 0
  name                = "${local.name}-rds-monitoring"
  assume_role_policy  = data.aws_iam_policy_document.rds_monitoring_trust.json
  managed_policy_arns = ["arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"]
}
