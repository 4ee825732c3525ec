"""Weekly lake maintenance on the slice's day: retention deletes the raw files and quarantine rows older than the
tenant's policy (audited; the manifest stays), compaction leaves a partition written in several files as one with
the same rows, VACUUM keeps what time travel needs within the window and deletes the rest past it, and a second
run does nothing more."""
from __future__ import annotations

from datetime import date

import pytest

from jobs import lake, storage
from jobs.maintenance import Retention, maintain, purge_quarantine, purge_raw, vacuum
from jobs.settings import ConfigurationError
from jobs.store.db import connect
from jobs.tenants import TenantConfig, load_tenant

pytestmark = [pytest.mark.spark, pytest.mark.postgres]
DAY = date(2026, 11, 20)


def live_files(spark, settings, name: str, tenant: str) -> int:
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, lake.table_path(settings, name)).toDF()
    return table.where(f"tenant_id = '{tenant}'").inputFiles().__len__()


def test_retention_compaction_and_vacuum(spark, slice_day):
    settings, tenant = slice_day.settings, slice_day.tenant_id
    events = lake.read(spark, settings, "events", tenant)
    before = sorted(tuple(r) for r in events.collect())
    # the day's events rewritten in three files (as a bigger day's write leaves them)
    (events.repartition(3).write.format("delta").mode("overwrite")
     .option("replaceWhere", f"tenant_id = '{tenant}' AND ingest_date = '{DAY}'")
     .save(lake.table_path(settings, "events")))
    assert live_files(spark, settings, "events", tenant) == 3
    versions = spark.sql(f"DESCRIBE HISTORY delta.`{lake.table_path(settings, 'events')}`").count()
    with connect(settings, tenant) as conn:
        raw = conn.execute("SELECT sha256, raw_uri FROM raw_file WHERE tenant_id = %s", (tenant,)).fetchall()
    quarantined = lake.read(spark, settings, "quarantine", tenant).count()
    assert raw and quarantined and all(storage.exists(settings, r["raw_uri"]) for r in raw)

    cfg = load_tenant(settings, tenant)
    policy = TenantConfig({**cfg.raw, "retention": {"raw_days": 30, "quarantine_days": 30}})
    # received / ingested on the day itself: not before it (what a run 30 days later keeps)
    assert purge_raw(settings, tenant, DAY, "t") == 0 and purge_quarantine(spark, settings, tenant, DAY, "t") == 0
    result = maintain(spark, settings, policy, date(2026, 12, 21))            # the slice's day is 31 days before
    assert (result["raw_files_purged"], result["quarantine_rows_purged"]) == (len(raw), quarantined)
    assert result["files_compacted"] >= 3 and result["files_vacuumed"] == 0   # within the 30 days of time travel
    assert not any(storage.exists(settings, r["raw_uri"]) for r in raw)
    with connect(settings, tenant) as conn:
        kept = conn.execute("SELECT count(*) AS n FROM raw_file WHERE tenant_id = %s AND raw_purged_at IS NOT NULL",
                            (tenant,)).fetchone()["n"]
        logged = conn.execute("SELECT action, detail FROM audit_log WHERE tenant_id = %s AND action LIKE '%%_purged' "
                              "ORDER BY seq", (tenant,)).fetchall()
    assert kept == len(raw)                                                  # the manifest keeps what was received
    assert [(r["action"], r["detail"]) for r in logged] == [
        ("raw_purged", {"received_before": "2026-11-21", "files": len(raw)}),
        ("quarantine_purged", {"ingested_before": "2026-11-21", "rows": quarantined})]
    assert lake.read(spark, settings, "quarantine", tenant).count() == 0
    assert live_files(spark, settings, "events", tenant) == 1
    assert sorted(tuple(r) for r in lake.read(spark, settings, "events", tenant).collect()) == before
    path = lake.table_path(settings, "events")
    old = spark.read.format("delta").option("versionAsOf", versions - 1).load(path)      # time travel still works
    assert old.where(f"tenant_id = '{tenant}'").count() == len(before)

    again = maintain(spark, settings, policy, date(2026, 12, 21))
    assert (again["raw_files_purged"], again["quarantine_rows_purged"], again["files_compacted"]) == (0, 0, 0)

    # past the window (none, here): the files only old versions need are deleted
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        assert vacuum(spark, settings.with_(time_travel_days=0))["events"] >= 3
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    with pytest.raises(Exception, match="(?i)file.*(not exist|not found)|FileNotFound"):
        spark.read.format("delta").option("versionAsOf", versions - 1).load(path).where(
            f"tenant_id = '{tenant}'").collect()
    assert sorted(tuple(r) for r in lake.read(spark, settings, "events", tenant).collect()) == before


@pytest.mark.parametrize("raw, named", [({"raw_days": 0}, "retention.raw_days"),
                                        ({"quarantine_days": "400"}, "retention.quarantine_days")])
def test_a_bad_retention_is_refused_with_the_setting_named(raw, named):
    with pytest.raises(ConfigurationError, match=f"tenant acme: {named} must be a whole number of days"):
        Retention.of("acme", raw)
