"""PostgreSQL publish speed: the exceptions queue loaded the way ``jobs/stages/publish.py`` loads it.

The rows are the open exceptions of a benchmark run (``gold/item_status``, status EXCEPTION, read
with delta-rs), repeated with distinct event ids up to ``rows`` when the day has fewer. On a fresh,
migrated database, in one transaction, through the publish stage's own ``refresh_queue``:

1. the temporary staging table ``exceptions_stage``, filled with psycopg 3 ``COPY ... FROM STDIN`` in
   CSV format written by Arrow (``jobs.store.arrow_copy.copy_arrow``)  -> staging rows/s;
2. the set-based ``INSERT ... ON CONFLICT`` into ``exception_item`` (primary key + index, tenant checked
   per statement) and the closing of what the run no longer reports; commit -> effective rows/s
   (rows / (COPY + upsert + close + commit));
3. the same again, every row already known (a rerun of the day)         -> rerun figures.

Spark's part of the real stage (reading the lake, streaming rows to the driver) is not in these
figures; the pipeline's publish stage time (``publish_stage`` per scale in the results) includes it.
"""
from __future__ import annotations

import time
from datetime import date

from jobs.stages.publish import STAGE_COLUMNS  # noqa: E402 (the columns the stage publishes)


def exception_rows(lake: str, rows: int):
    """(Arrow table of the rows to publish, how many distinct exceptions the lake had)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(f"{lake}/gold/item_status").to_pyarrow_table(columns=STAGE_COLUMNS + ["status"])
    table = table.filter(pc.equal(table["status"], "EXCEPTION")).select(STAGE_COLUMNS)
    table = table.cast(pa.schema([f.with_nullable(True) for f in table.schema]))
    if table.num_rows == 0:
        raise ValueError(f"no exceptions in {lake}")
    parts, have, k = [], 0, 0
    while have < rows:
        part = table.slice(0, rows - have)
        if k:
            ids = pc.binary_join_element_wise(part["event_id"], pa.scalar(f"~{k}"), "")
            part = part.set_column(0, "event_id", ids)
        parts.append(part)
        have += part.num_rows
        k += 1
    return pa.concat_tables(parts).combine_chunks(), table.num_rows


def _tenant(conn, tenant: str) -> None:
    conn.execute("INSERT INTO tenant (tenant_id, name, config, config_version, config_sha256) "
                 "VALUES (%s, %s, '{}'::jsonb, 1, 'bench') ON CONFLICT DO NOTHING", (tenant, tenant))


def load(conn, rows, tenant: str, business_date: date) -> dict:
    """One publish of ``rows`` in one transaction, through the publish stage's own ``refresh_queue``;
    the seconds of each step."""
    from jobs.stages.publish import refresh_queue

    marks = [("start", time.perf_counter())]
    refresh_queue(conn, tenant, business_date, rows.to_batches(max_chunksize=100_000),
                  lambda step: marks.append((step, time.perf_counter())))
    conn.commit()
    marks.append(("commit", time.perf_counter()))
    at = dict(marks)
    return {"copy_s": at["copy"] - at["start"], "upsert_s": at["upsert"] - at["copy"],
            "close_commit_s": at["commit"] - at["upsert"]}


def publish_benchmark(lake: str, admin_url: str, rows: int = 1_000_000, tenant: str = "acme",
                      business_date: date = date(2026, 11, 20)) -> dict:
    import psycopg

    from bench.run import drop_database, fresh_database

    data, distinct = exception_rows(lake, rows)
    url = fresh_database(admin_url, "publish")
    try:
        with psycopg.connect(url) as conn:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant,))     # row-level security
            _tenant(conn, tenant)
            conn.commit()
            first = load(conn, data, tenant, business_date)
            rerun = load(conn, data, tenant, business_date)
            stored = conn.execute("SELECT count(*) FROM exception_item WHERE tenant_id = %s", (tenant,)).fetchone()[0]
    finally:
        drop_database(admin_url, url)
    n = data.num_rows
    effective = first["copy_s"] + first["upsert_s"] + first["close_commit_s"]
    return {
        "rows": n, "distinct_exceptions_in_day": distinct, "rows_stored": stored,
        "copy_s": round(first["copy_s"], 2), "upsert_s": round(first["upsert_s"], 2),
        "close_commit_s": round(first["close_commit_s"], 2),
        "staging_rows_per_s": round(n / first["copy_s"]), "effective_rows_per_s": round(n / effective),
        "rerun_copy_s": round(rerun["copy_s"], 2), "rerun_upsert_s": round(rerun["upsert_s"], 2),
        "rerun_effective_rows_per_s": round(n / (rerun["copy_s"] + rerun["upsert_s"] + rerun["close_commit_s"])),
        "note": (f"The day's {distinct:,} open exceptions repeated with distinct event ids to {n:,} rows; COPY in "
                 "CSV format written by Arrow per 100k-row batch (jobs.store.arrow_copy.copy_arrow, as the publish stage "
                 "does), upsert in key order; fresh migrated database; "
                 "effective = rows / (COPY + upsert + close + commit) into exception_item (primary key + index)."),
    }
