# Alert topics by priority (the DAGs' notifiers publish to them), a failed Spark job published as it happens
# (EventBridge: EMR Serverless and Glue job state changes), database alarms, and one dashboard.

resource "aws_sns_topic" "alerts" {
  for_each          = toset(["critical", "warning"])
  name              = "${local.name}-alerts-${each.key}"
  kms_master_key_id = aws_kms_key.lake.arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alert_emails)
  topic_arn = aws_sns_topic.alerts["critical"].arn
  protocol  = "email"
  endpoint  = each.key
}

data "aws_iam_policy_document" "alerts" {
  for_each = aws_sns_topic.alerts
  statement {
    sid       = "AlarmsAndEvents"
    actions   = ["sns:Publish"]
    resources = [each.value.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  for_each = aws_sns_topic.alerts
  arn      = each.value.arn
  policy   = data.aws_iam_policy_document.alerts[each.key].json
}

resource "aws_cloudwatch_event_rule" "job_failed" {
  name        = "${local.name}-spark-job-failed"
  description = "A Spark stage's job on EMR Serverless or Glue failed, was cancelled or timed out"
  event_pattern = jsonencode({
    "$or" = [
      {
        source        = ["aws.emr-serverless"]
        "detail-type" = ["EMR Serverless Job Run State Change"]
        detail        = { applicationId = [aws_emrserverless_application.spark.id], state = ["FAILED", "CANCELLED"] }
      },
      {
        source        = ["aws.glue"]
        "detail-type" = ["Glue Job State Change"]
        detail        = { jobName = [aws_glue_job.stages.name], state = ["FAILED", "TIMEOUT", "STOPPED"] }
      },
    ]
  })
}

resource "aws_cloudwatch_event_target" "job_failed" {
  rule = aws_cloudwatch_event_rule.job_failed.name
  arn  = aws_sns_topic.alerts["critical"].arn
}

resource "aws_cloudwatch_metric_alarm" "database" {
  for_each = var.create_database ? {
    cpu     = { metric = "CPUUtilization", comparison = "GreaterThanThreshold", threshold = 80, unit = "percent" }
    storage = { metric = "FreeStorageSpace", comparison = "LessThanThreshold", threshold = 10737418240, unit = "bytes" }
    memory  = { metric = "FreeableMemory", comparison = "LessThanThreshold", threshold = 268435456, unit = "bytes" }
  } : {}
  alarm_name          = "${local.name}-database-${each.key}"
  alarm_description   = "Operational database ${each.value.metric} ${each.value.comparison} ${each.value.threshold} ${each.value.unit} for 15 minutes"
  namespace           = "AWS/RDS"
  metric_name         = each.value.metric
  dimensions          = { DBInstanceIdentifier = aws_db_instance.recon[0].identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  alarm_actions       = [aws_sns_topic.alerts["warning"].arn]
  ok_actions          = [aws_sns_topic.alerts["warning"].arn]
}

resource "aws_cloudwatch_dashboard" "recon" {
  dashboard_name = local.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title   = "Spark jobs (EMR Serverless)", region = var.region, stat = "Sum", period = 3600
          metrics = [["AWS/EMRServerless", "SuccessJobs", "ApplicationId", aws_emrserverless_application.spark.id], [".", "FailedJobs", ".", "."]]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title   = "Operational database", region = var.region, stat = "Average", period = 300
          metrics = [["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", local.name], [".", "DatabaseConnections", ".", "."]]
        }
      },
    ]
  })
}
