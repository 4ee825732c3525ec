"""The pipeline's stages. Each is a function of (spark, settings, tenant, business date, inputs) that
reads and writes the lake idempotently; ``jobs.pipeline`` chains them, the DAG runs one per task."""
