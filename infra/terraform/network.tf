# One VPC of private subnets for the Spark jobs, the database, Redshift and the Airflow workers. No internet
# gateway: AWS APIs are reached through VPC endpoints (S3 as a gateway; Glue, Secrets Manager, CloudWatch, STS,
# EMR Serverless, SNS, Athena as interface endpoints).

data "aws_availability_zones" "available" {
  # checkov:skip=CKV_AWS_394:the two subnets take the region's first two zones when created; a later change of the list would show as a plan diff, never silently
  state = "available"
}

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags = {
    Name = local.name
  }
}

resource "aws_subnet" "private" {
  count             = 2
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)
  availability_zone = data.aws_availability_zones.available.names[count.index]
  tags = {
    Name = "${local.name}-private-${count.index}"
  }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
}

resource "aws_route_table_association" "private" {
  count          = 2
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# The default security group of the VPC allows nothing.
resource "aws_default_security_group" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_flow_log" "main" {
  vpc_id               = aws_vpc.main.id
  traffic_type         = "REJECT"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow.arn
  iam_role_arn         = aws_iam_role.flow_log.arn
}

resource "aws_cloudwatch_log_group" "flow" {
  name              = "/${local.name}/vpc-flow"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.lake.arn
}

data "aws_iam_policy_document" "flow_log_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "flow_log" {
  name               = "${local.name}-flow-log"
  assume_role_policy = data.aws_iam_policy_document.flow_log_trust.json
}

data "aws_iam_policy_document" "flow_log" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_log" {
  role   = aws_iam_role.flow_log.id
  policy = data.aws_iam_policy_document.flow_log.json
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = toset(["glue", "secretsmanager", "logs", "monitoring", "sts", "emr-serverless", "sns", "athena", "kms"])
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
}

resource "aws_security_group" "endpoints" {
  name        = "${local.name}-endpoints"
  description = "AWS API endpoints, reached over HTTPS from inside the VPC"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  security_group_id = aws_security_group.endpoints.id
  description       = "HTTPS from the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_security_group" "jobs" {
  # checkov:skip=CKV2_AWS_5:attached to the EMR Serverless application's network configuration and the Glue NETWORK connection
  name        = "${local.name}-jobs"
  description = "Spark jobs (EMR Serverless, Glue): to each other, AWS endpoints and the database"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "jobs_self" {
  security_group_id            = aws_security_group.jobs.id
  description                  = "Spark driver and executors talk to each other"
  referenced_security_group_id = aws_security_group.jobs.id
  ip_protocol                  = "-1"
}

resource "aws_security_group" "airflow" {
  # checkov:skip=CKV2_AWS_5:for the self-managed Airflow components (output network), created outside this configuration
  name        = "${local.name}-airflow"
  description = "Airflow workers, scheduler and triggerer: to AWS endpoints and the database"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_egress_rule" "https_to_endpoints" {
  for_each                     = { jobs = aws_security_group.jobs.id, airflow = aws_security_group.airflow.id }
  security_group_id            = each.value
  description                  = "HTTPS to the AWS API endpoints"
  referenced_security_group_id = aws_security_group.endpoints.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "https_to_s3" {
  for_each          = { jobs = aws_security_group.jobs.id, airflow = aws_security_group.airflow.id }
  security_group_id = each.value
  description       = "HTTPS to S3 through the gateway endpoint"
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "jobs_self" {
  security_group_id            = aws_security_group.jobs.id
  description                  = "Spark driver and executors talk to each other"
  referenced_security_group_id = aws_security_group.jobs.id
  ip_protocol                  = "-1"
}

resource "aws_vpc_security_group_egress_rule" "postgres" {
  for_each                     = { jobs = aws_security_group.jobs.id, airflow = aws_security_group.airflow.id }
  security_group_id            = each.value
  description                  = "PostgreSQL, the operational database"
  referenced_security_group_id = aws_security_group.database.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "The operational PostgreSQL: reached by the Airflow workers and the Spark jobs only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each                     = { jobs = aws_security_group.jobs.id, airflow = aws_security_group.airflow.id }
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the ${each.key}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_security_group" "redshift" {
  name        = "${local.name}-redshift"
  description = "Redshift Serverless for analysts: reached from the Airflow workers and the analysts' network"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "redshift" {
  for_each          = toset(var.analyst_cidrs)
  security_group_id = aws_security_group.redshift.id
  description       = "Redshift from the analysts' network ${each.key}"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 5439
  to_port           = 5439
}
