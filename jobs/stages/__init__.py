"""The pipeline's stages. Each is a function of (spark, settings, tenant, business date, inputs) that
reads and writes the lake idempotently; ``jobs.pipeline.STAGES`` registers them, the DAG runs one per task.

``STAGE_NAMES`` is their order, importable without the pipeline's dependencies (the command line's parser is
built from it inside the job archive)."""

STAGE_NAMES = ("land", "parse", "match", "ledger", "publish", "erp_export")
