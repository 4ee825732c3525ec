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
  description = "Create an RDS PostgreSQL instance for the operational store (else bring your own URL)"
  type        = bool
  default     = true
}

variable "db_subnet_ids" {
  description = "Private subnets for the RDS instance (required when create_database)"
  type        = list(string)
  default     = []
}

variable "db_security_group_ids" {
  type    = list(string)
  default = []
}

variable "raw_retention_days" {
  description = "Days raw files stay in STANDARD before moving to STANDARD_IA (they are never deleted by lifecycle)"
  type        = number
  default     = 90
}

variable "tenants" {
  description = "Tenant ids: each gets its PII salt secret <name>/pii-salt/<tenant> (value put once, outside Terraform)"
  type        = list(string)
  default     = []
}

variable "job_subnet_ids" {
  description = "Private subnets the EMR Serverless jobs run in (the database's VPC); empty: no VPC access"
  type        = list(string)
  default     = []
}

variable "job_security_group_ids" {
  description = "Security groups of the jobs (allowed by the database's security group on 5432)"
  type        = list(string)
  default     = []
}

variable "glue_workers" {
  description = "Workers of a Glue job run (RECON_SPARK_MODE=glue)"
  type        = number
  default     = 4
}
