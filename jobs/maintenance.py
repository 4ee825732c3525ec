"""Lake maintenance, per tenant (stage ``maintain``, weekly from the ``lake_maintenance`` DAG, or ``recon stage
maintain``): retention of the raw zone and the quarantine by the tenant's policy, compaction of its partitions,
and VACUUM with the documented time-travel window.

1. Retention (tenant configuration ``retention``): raw files received more than ``raw_days`` before the run's
   business date are deleted from the raw zone (their manifest rows stay, with ``raw_purged_at``; the same content
   delivered again is still recognised and not landed twice); quarantine rows older than ``quarantine_days`` are
   deleted from the table. Both audited. Defaults 400 days (the raw zone's card-data limit, Terraform's
   ``raw_card_data_retention_days``); nothing else is deleted: events, matches and journals are the books.
2. Compaction: ``OPTIMIZE`` of the tenant's partitions of every table (a rerun of a day leaves its partition in as
   many files as the write made; the reads after it open one).
3. ``VACUUM`` of every table, keeping the files any version of the last ``RECON_TIME_TRAVEL_DAYS`` (30) days
   needs: time travel (``versionAsOf`` / ``timestampAsOf``) works that far back, and the log is kept as long
   (``delta.logRetentionDuration``).

Rerunning it changes nothing more: what was purged is gone, a compacted partition is one file, VACUUM finds nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from jobs import audit, storage
from jobs.settings import ConfigurationError, Settings, check_tenant_id

DEFAULT_RETENTION_DAYS = 400


@dataclass(frozen=True)
class Retention:
    raw_days: int = DEFAULT_RETENTION_DAYS
    quarantine_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def of(cls, tenant_id: str, raw: dict | None) -> "Retention":
        values = {}
        for key in ("raw_days", "quarantine_days"):
            value = (raw or {}).get(key, DEFAULT_RETENTION_DAYS)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"tenant {tenant_id}: retention.{key} must be a whole number of days >= 1, "
                                         f"got {value!r}")
            values[key] = value
        return cls(**values)


def purge_raw(settings: Settings, tenant_id: str, before: date, actor: str) -> int:
    """Delete the tenant's raw files received before ``before`` from the raw zone; record and audit it."""
    from jobs.store.db import connect

    with connect(settings, tenant_id) as conn:
        rows = conn.execute("SELECT sha256, raw_uri FROM raw_file WHERE tenant_id = %s AND received_date < %s "
                            "AND raw_purged_at IS NULL ORDER BY received_date, sha256", (tenant_id, before)).fetchall()
        for r in rows:
            if storage.exists(settings, r["raw_uri"]):
                storage.delete(settings, r["raw_uri"])
            conn.execute("UPDATE raw_file SET raw_purged_at = now() WHERE tenant_id = %s AND sha256 = %s",
                         (tenant_id, r["sha256"]))
        if rows:
            audit.append(conn, tenant_id, actor, "raw_purged", "raw_file", None,
                         {"received_before": before.isoformat(), "files": len(rows)})
    return len(rows)


def purge_quarantine(spark, settings: Settings, tenant_id: str, before: date, actor: str) -> int:
    """Delete the tenant's quarantine rows of ingest dates before ``before`` (whole partitions)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from jobs import lake
    from jobs.store.db import connect

    table = lake.TABLES["quarantine"]
    lake.ensure_table(spark, settings, "quarantine")
    old = (F.col("tenant_id") == tenant_id) & (F.col(table.date_column) < F.lit(before))
    n = lake.read(spark, settings, "quarantine", tenant_id, until=before - timedelta(days=1)).count()
    if n:
        DeltaTable.forPath(spark, lake.table_path(settings, "quarantine")).delete(old)
        with connect(settings, tenant_id) as conn:
            audit.append(conn, tenant_id, actor, "quarantine_purged", "quarantine", None,
                         {"ingested_before": before.isoformat(), "rows": n})
    return n


def compact(spark, settings: Settings, tenant_id: str) -> dict[str, int]:
    """``OPTIMIZE`` the tenant's partitions of every table: files removed per table."""
    from delta.tables import DeltaTable

    from jobs import lake

    check_tenant_id(tenant_id)                           # it goes into the predicate's text
    removed = {}
    for name in lake.TABLES:
        lake.ensure_table(spark, settings, name)
        metrics = (DeltaTable.forPath(spark, lake.table_path(settings, name)).optimize()
                   .where(f"tenant_id = '{tenant_id}'").executeCompaction().collect()[0]["metrics"])
        removed[name] = int(metrics["numFilesRemoved"])
    return removed


def vacuum(spark, settings: Settings) -> dict[str, int]:
    """``VACUUM`` every table, keeping ``time_travel_days`` of versions (and as many days of log): files deleted."""
    from jobs import lake

    # VACUUM lists the table's folders in a job of spark.sql.sources.parallelPartitionDiscovery.parallelism tasks
    # (10,000 by default: 59 s for a three-partition table on 2 cores, 5.8 s with 4 tasks); a few per core suffice
    listing = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
    previous = spark.conf.get(listing, None)
    spark.conf.set(listing, str(max(4, spark.sparkContext.defaultParallelism * 4)))
    try:
        return {name: _vacuum_table(spark, settings, name) for name in lake.TABLES}
    finally:
        if previous is None:
            spark.conf.unset(listing)
        else:
            spark.conf.set(listing, previous)


def _vacuum_table(spark, settings: Settings, name: str) -> int:
    from delta.tables import DeltaTable

    from jobs import lake

    days = settings.time_travel_days
    wanted = {"delta.logRetentionDuration": f"interval {max(30, days)} days",
              "delta.deletedFileRetentionDuration": f"interval {days} days"}
    path = lake.table_path(settings, name)
    lake.ensure_table(spark, settings, name)
    table = DeltaTable.forPath(spark, path)
    current = table.detail().collect()[0]["properties"] or {}
    if any(current.get(k) != v for k, v in wanted.items()):        # a commit only when the window changed
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ("
                  + ", ".join(f"'{k}' = '{v}'" for k, v in wanted.items()) + ")")
    doomed = spark.sql(f"VACUUM delta.`{path}` RETAIN {days * 24} HOURS DRY RUN").count()
    if doomed:
        table.vacuum(days * 24)
    return doomed


def maintain(spark, settings: Settings, cfg, business_date: date, actor: str = "lake_maintenance") -> dict:
    """Retention, compaction and VACUUM for one tenant, as of ``business_date`` (the DAG run's)."""
    tenant = cfg.tenant_id
    policy = Retention.of(tenant, cfg.raw.get("retention"))
    raw = purge_raw(settings, tenant, business_date - timedelta(days=policy.raw_days), actor)
    quarantined = purge_quarantine(spark, settings, tenant, business_date - timedelta(days=policy.quarantine_days),
                                   actor)
    compacted = compact(spark, settings, tenant)
    vacuumed = vacuum(spark, settings)
    return {"raw_files_purged": raw, "quarantine_rows_purged": quarantined,
            "files_compacted": sum(compacted.values()), "files_vacuumed": sum(vacuumed.values()),
            "time_travel_days": settings.time_travel_days}
