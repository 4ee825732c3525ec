"""Ingestion: files and events from SFTP, email (IMAP), PSP list APIs and signed webhooks into the
raw zone, exactly once, with their provenance.

- ``config``    connectors per tenant, validated and versioned in PostgreSQL (secrets: Airflow connection ids)
- ``window``    the run's data interval, connector schedules and delivery windows
- ``sftp``, ``imap``, ``api``   one module per pull connector, each built on the provider's hook
- ``webhooks``  the signed-webhook receiver (ASGI), its durable inbox and the batches it lands
- ``runs``      connector runs and state; ``alerts`` records and delivers alerts
- ``tasks``     what the ``ingest_hourly`` DAG's tasks call

Everything lands through ``jobs.landing`` (``land_file`` / ``land_bytes``): content-addressed,
unchanged, once per tenant whatever the connector.
"""
