variable "region" {
  description = "AWS region of the lake, the Spark runtime and the database"
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Environment name, part of every resource name (e.g. prod, staging)"
  type        = string
}

variable "emr_release_label" {
  description = "EMR Serverless release: emr-7.x ships Spark 3.5.6 + Delta 3.3.2, the versions the project pins"
  type        = string
  default     = "emr-7.12.0"
}

variable "emr_max_vcpu" {
  description = "Upper bound of the EMR Serverless application's capacity"
  type        = string
  default     = "64 vCPU"
}

variable "emr_max_memory" {
  type    = string
  default = "256 GB"
}

variable "create_database" {
  description = "Create the RDS PostgreSQL instance of the operational store (else bring your own, reachable from the private subnets)"
  type        = bool
  default     = true
}

variable "raw_retention_days" {
  description = "Days raw files stay in STANDARD before moving to STANDARD_IA"
  type        = number
  default     = 90
}

variable "raw_card_data_retention_days" {
  description = "Days raw files (as delivered: they may hold card numbers) are kept before they expire; reprocessing a day needs its raw files"
  type        = number
  default     = 400
  validation {
    condition     = var.raw_card_data_retention_days > var.raw_retention_days
    error_message = "raw files must outlive their move to STANDARD_IA"
  }
}

variable "tenants" {
  description = "Tenant ids: each gets its PII salt secret <name>/pii-salt/<tenant> and its evidence signing key <name>/evidence-key/<tenant> (values put once, outside Terraform)"
  type        = list(string)
  default     = []
}

variable "glue_workers" {
  description = "Workers of a Glue job run (RECON_SPARK_MODE=glue)"
  type        = number
  default     = 4
}

variable "vpc_cidr" {
  description = "Address range of the VPC; its first two /20 (for a /16) are the private subnets"
  type        = string
  default     = "10.42.0.0/16"
}

variable "analyst_cidrs" {
  description = "Networks (e.g. the corporate VPN) allowed to reach Redshift on 5439"
  type        = list(string)
  default     = []
}

variable "db_instance_class" {
  type    = string
  default = "db.t4g.medium"
}

variable "alert_emails" {
  description = "Addresses subscribed to the critical alert topic (each confirms by e-mail)"
  type        = list(string)
  default     = []
}

variable "redshift_base_capacity" {
  description = "Redshift Serverless base capacity (RPUs)"
  type        = number
  default     = 8
}

variable "airflow_trusted_services" {
  description = "Services that run the Airflow components and assume their role (ECS tasks, EC2, EKS pods via IRSA need their own trust)"
  type        = list(string)
  default     = ["ecs-tasks.amazonaws.com", "ec2.amazonaws.com"]
}

variable "access_log_retention_days" {
  description = "Days the lake bucket's server access logs are kept"
  type        = number
  default     = 365
}

variable "job_image_tag" {
  description = "Tag of the jobs' image in the ECR repository (infra/emr/Dockerfile); null until it is pushed"
  type        = string
  default     = null
}
