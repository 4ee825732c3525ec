"""The pipeline's stages. Each is a function of (spark, settings, tenant, business date, inputs) that
reads and writes the lake idempotently; ``jobs.pipeline.STAGES`` registers them, the DAG runs one per task.

``STAGE_NAMES`` is their order, importable without the pipeline's dependencies (the command line's parser is
built from it inside the job archive). ``DAILY_SPARK_STAGES`` are the daily run's stages that need a Spark
session: in a remote mode ``reconcile_daily`` runs them as jobs; ``land``, ``alerts`` (the outcome check,
``jobs.alerts.outcomes``) and ``report`` (the daily HTML report, ``jobs.daily_report``) run in the worker. ``maintain`` (retention, compaction, VACUUM: ``jobs.maintenance``)
is the weekly ``lake_maintenance`` DAG's, a Spark stage outside the daily chain."""

STAGE_NAMES = ("land", "parse", "match", "ledger", "publish", "erp_export", "alerts", "report", "maintain")
DAILY_SPARK_STAGES = ("parse", "match", "ledger", "publish", "erp_export")
