"""Publish a run to PostgreSQL: the exceptions queue, the run row and its metrics (the summary).

Exceptions (``gold/item_status``, the ledger's fee checks and refused dispute transitions, see
``jobs/ledger/exceptions.py``) are streamed from the lake with COPY into a temporary staging table
and merged set-based (``sql/queries/exceptions_*.sql``); the run row and metrics are replaced for (tenant, date) in the
same transaction, so a rerun leaves the same rows.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.settings import Settings
from jobs.store.arrow_copy import arrow_batches, copy_arrow
from jobs.store.db import connect, sql

STAGE_COLUMNS = ["event_id", "relation", "reason_code", "reason_detail", "source", "event_type", "amount_minor",
                 "currency", "file_name", "record_ordinal"]


QUEUE_LOCK = 727_002       # advisory lock class: one refresh of a tenant's exceptions queue at a time
QUEUE_MEMORY = "256MB"     # the staged rows sorted and hashed in memory (a 1M-row day stages ~200 MB)


def refresh_queue(conn, tenant_id: str, business_date: date, batches: Iterable,
                  mark: Callable[[str], None] = lambda step: None) -> int:
    """Refresh the tenant's exceptions queue from the run of ``business_date`` in the caller's transaction:
    stage ``batches`` (Arrow record batches of STAGE_COLUMNS) with COPY, add the refused dispute
    transitions, upsert set-based, close what the run no longer reports. Calls ``mark(step)`` after
    "copy", "upsert" and "close". Returns the rows staged.

    One refresh per tenant at a time (a transaction-scoped advisory lock): two runs of the same tenant
    (a daily run and a reprocess) would otherwise close each other's exceptions."""
    params = {"tenant_id": tenant_id, "business_date": business_date}
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (QUEUE_LOCK, tenant_id))
    conn.execute(f"SET temp_buffers = '{QUEUE_MEMORY}'")      # before the session's first temporary table
    conn.execute(f"SET LOCAL work_mem = '{QUEUE_MEMORY}'")
    conn.execute(sql("exceptions_stage"))
    count = copy_arrow(conn, "exception_stage", STAGE_COLUMNS, batches)
    # the ledger's refused dispute transitions join the same staging, so that closing below spares them
    count += conn.execute(sql("exceptions_stage_disputes"), params).rowcount
    conn.execute(sql("exceptions_stage_index"))
    conn.execute("ANALYZE exception_stage")
    mark("copy")
    conn.execute(sql("exceptions_upsert"), params)
    mark("upsert")
    conn.execute(sql("exceptions_close"), params)
    mark("close")
    return count


def publish(spark: SparkSession, settings: Settings, tenant_id: str, business_date: date, run_id: str,
            summary: dict, metrics: list[tuple[str, str, int]]) -> int:
    """Returns the number of open exceptions published."""
    from jobs.ledger.exceptions import fee_exceptions

    exceptions = (lake.read(spark, settings, "item_status", tenant_id, since=business_date, until=business_date)
                  .filter(F.col("status") == "EXCEPTION")
                  .select(*STAGE_COLUMNS)
                  .unionByName(fee_exceptions(spark, settings, tenant_id, business_date).select(*STAGE_COLUMNS)))
    with connect(settings, tenant_id) as conn:
        count = refresh_queue(conn, tenant_id, business_date, arrow_batches(exceptions))
        conn.execute(
            "INSERT INTO recon_run (tenant_id, business_date, run_id, status, finished_at, summary) "
            "VALUES (%s, %s, %s, 'succeeded', now(), %s) ON CONFLICT (tenant_id, business_date) DO UPDATE "
            "SET run_id = EXCLUDED.run_id, status = 'succeeded', finished_at = now(), summary = EXCLUDED.summary",
            (tenant_id, business_date, run_id, json.dumps(summary, default=str)),
        )
        conn.execute("DELETE FROM run_metric WHERE tenant_id = %s AND business_date = %s", (tenant_id, business_date))
        conn.cursor().executemany(          # a few hundred rows (COPY is refused under row-level security)
            "INSERT INTO run_metric (tenant_id, business_date, metric, dimension, value) VALUES (%s, %s, %s, %s, %s)",
            [(tenant_id, business_date, metric, dimension, int(value)) for metric, dimension, value in metrics])
    return count
