"""PostgreSQL publish speed: the exceptions queue loaded the way ``jobs/stages/publish.py`` loads it.

The rows are the open exceptions of a benchmark run (``gold/item_status``, status EXCEPTION, read
with delta-rs), repeated with distinct event ids up to ``rows`` when the day has fewer. On a fresh,
migrated database, in one transaction like the publish stage:

1. ``exceptions_stage``: the temporary staging table, filled with psycopg 3 ``COPY ... FROM STDIN``
   (``write_row`` per row, as the stage does)                           -> staging rows/s;
2. ``exceptions_upsert``: the set-based ``INSERT ... ON CONFLICT`` into ``exception_item`` (primary
   key + index) and ``exceptions_close``; commit                        -> effective rows/s
   (rows / (COPY + upsert + close + commit));
3. the same again, every row already known (a rerun of the day)         -> rerun figures.

Spark's part of the real stage (reading the lake, streaming rows to the driver) is not in these
figures; the pipeline's publish stage time (``publish_stage`` per scale in the results) includes it.
"""
from __future__ import annotations

import time
from datetime import date

STAGE_COLUMNS = ["event_id", "relation", "reason_code", "reason_detail", "source", "event_type", "amount_minor",
                 "currency", "file_name", "record_ordinal"]


def exception_rows(lake: str, rows: int) -> tuple[list[tuple], int]:
    """(rows to publish, how many distinct exceptions the lake had)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(f"{lake}/gold/item_status").to_pyarrow_table(columns=STAGE_COLUMNS + ["status"])
    table = table.filter(pc.equal(table["status"], "EXCEPTION")).select(STAGE_COLUMNS)
    base = list(zip(*(table[c].to_pylist() for c in STAGE_COLUMNS)))
    if not base:
        raise ValueError(f"no exceptions in {lake}")
    out, k = [], 0
    while len(out) < rows:
        suffix = "" if k == 0 else f"~{k}"
        out.extend((r[0] + suffix, *r[1:]) for r in base[: rows - len(out)])
        k += 1
    return out, len(base)


def _tenant(conn, tenant: str) -> None:
    conn.execute("INSERT INTO tenant (tenant_id, name, config, config_version, config_sha256) "
                 "VALUES (%s, %s, '{}'::jsonb, 1, 'bench') ON CONFLICT DO NOTHING", (tenant, tenant))


def load(conn, rows: list[tuple], tenant: str, business_date: date) -> dict:
    """One publish of ``rows`` in one transaction; the seconds of each step."""
    from jobs.store.db import sql

    params = {"tenant_id": tenant, "business_date": business_date}
    t0 = time.perf_counter()
    conn.execute(sql("exceptions_stage"))
    with conn.cursor().copy(f"COPY exception_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    t1 = time.perf_counter()
    upserted = conn.execute(sql("exceptions_upsert"), params).rowcount
    t2 = time.perf_counter()
    conn.execute(sql("exceptions_close"), params)
    conn.commit()
    t3 = time.perf_counter()
    return {"copy_s": t1 - t0, "upsert_s": t2 - t1, "close_commit_s": t3 - t2, "upserted": upserted}


def publish_benchmark(lake: str, admin_url: str, rows: int = 1_000_000, tenant: str = "acme",
                      business_date: date = date(2026, 11, 20)) -> dict:
    import psycopg

    from bench.run import drop_database, fresh_database
    from jobs.settings import Settings
    from jobs.store.migrate import migrate

    data, distinct = exception_rows(lake, rows)
    url = fresh_database(admin_url, "publish")
    try:
        migrate(Settings(database_url=url))
        with psycopg.connect(url) as conn:
            _tenant(conn, tenant)
            conn.commit()
            first = load(conn, data, tenant, business_date)
            rerun = load(conn, data, tenant, business_date)
            stored = conn.execute("SELECT count(*) FROM exception_item WHERE tenant_id = %s", (tenant,)).fetchone()[0]
    finally:
        drop_database(admin_url, url)
    n = len(data)
    effective = first["copy_s"] + first["upsert_s"] + first["close_commit_s"]
    return {
        "rows": n, "distinct_exceptions_in_day": distinct, "rows_stored": stored,
        "copy_s": round(first["copy_s"], 2), "upsert_s": round(first["upsert_s"], 2),
        "close_commit_s": round(first["close_commit_s"], 2),
        "staging_rows_per_s": round(n / first["copy_s"]), "effective_rows_per_s": round(n / effective),
        "rerun_copy_s": round(rerun["copy_s"], 2), "rerun_upsert_s": round(rerun["upsert_s"], 2),
        "rerun_effective_rows_per_s": round(n / (rerun["copy_s"] + rerun["upsert_s"] + rerun["close_commit_s"])),
        "note": (f"The day's {distinct:,} open exceptions repeated with distinct event ids to {n:,} rows; COPY in "
                 "text format with one write_row per row (as jobs/stages/publish.py does), fresh migrated database; "
                 "effective = rows / (COPY + upsert + close + commit) into exception_item (primary key + index)."),
    }
