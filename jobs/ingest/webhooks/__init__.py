"""Signed webhooks: a small ASGI receiver (``recon webhooks serve``), its durable inbox in PostgreSQL,
and the batches the ingest DAG lands from it. See ``receiver`` for the HTTP contract."""
