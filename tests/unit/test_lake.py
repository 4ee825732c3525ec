"""Delta tables: declared schemas, additive schema evolution, partition replacement."""
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql.types import StructType

from jobs import lake as lake_mod
from jobs.schema import EVENT_SCHEMA, QUARANTINE_SCHEMA
from jobs.settings import Settings

pytestmark = pytest.mark.spark


def test_an_older_table_gains_the_columns_a_newer_schema_version_adds(spark, lake):
    from delta.tables import DeltaTable

    settings = Settings(lake=lake)
    older = StructType(EVENT_SCHEMA.fields[:-1])
    (DeltaTable.createIfNotExists(spark).location(lake + "/silver/events").addColumns(older)
     .partitionedBy("tenant_id", "ingest_date").execute())
    lake_columns = lambda: [f.name for f in spark.read.format("delta").load(lake + "/silver/events").schema]  # noqa
    assert EVENT_SCHEMA.fields[-1].name not in lake_columns()
    lake_mod.ensure_table(spark, settings, "events")
    assert lake_columns() == [f.name for f in EVENT_SCHEMA.fields]
    properties = DeltaTable.forPath(spark, lake + "/silver/events").detail().first()["properties"]
    assert properties[lake_mod.STATS_PROPERTY] == "event_id,file_name,record_ordinal"


def test_a_write_keeps_statistics_of_the_declared_columns_only(spark, lake):
    """Per-file min/max of the ids lookups filter on (a record by file and ordinal), not of every column."""
    import glob
    import json

    settings = Settings(lake=lake)
    d = date(2026, 11, 19)
    rows = [("t1", d, "f" * 64, f"{name}.csv", i, "BAD_AMOUNT", "detail", "raw") for i, name in enumerate("ab", 1)]
    lake_mod.replace_partition(spark, settings, "quarantine", spark.createDataFrame(rows, QUARANTINE_SCHEMA), "t1", d)
    adds = [json.loads(line)["add"] for log in glob.glob(lake + "/bronze/quarantine/_delta_log/*.json")
            for line in open(log) if '"add"' in line]
    stats = [json.loads(a["stats"]) for a in adds]
    assert stats and all(set(s["minValues"]) == {"file_name", "record_ordinal"} for s in stats)
    assert min(s["minValues"]["file_name"] for s in stats) == "a.csv"
    assert sum(s["numRecords"] for s in stats) == 2


def test_replacing_a_partition_is_idempotent_and_leaves_other_partitions(spark, lake):
    settings = Settings(lake=lake)
    row = lambda t, d, reason: (t, d, "f" * 64, "a.csv", 1, reason, None, "raw")  # noqa: E731
    d1, d2 = date(2026, 11, 19), date(2026, 11, 20)
    for _ in range(2):
        lake_mod.replace_partition(spark, settings, "quarantine",
                                   spark.createDataFrame([row("t1", d1, "BAD_AMOUNT")], QUARANTINE_SCHEMA), "t1", d1)
    lake_mod.replace_partition(spark, settings, "quarantine",
                               spark.createDataFrame([row("t1", d2, "MISSING_ID")], QUARANTINE_SCHEMA), "t1", d2)
    lake_mod.replace_partition(spark, settings, "quarantine",
                               spark.createDataFrame([row("t1", d1, "UNKNOWN_CURRENCY")], QUARANTINE_SCHEMA), "t1", d1)
    rows = sorted((r.ingest_date, r.reason_code) for r in lake_mod.read(spark, settings, "quarantine", "t1").collect())
    assert rows == [(d1, "UNKNOWN_CURRENCY"), (d2, "MISSING_ID")]


def test_a_new_local_table_is_as_declared_and_inspected_once_per_session(spark, lake):
    """A fresh lake's tables (created by delta-rs, not Spark) are what Spark would have created: the declared
    schema with NOT NULL enforced on write, the partitioning and the properties; and a table is created or
    inspected once per session, not before every read and write (a memo keyed on the wrong value made every
    call pay 0.06-0.16 s)."""
    import shutil

    from delta.tables import DeltaTable

    settings = Settings(lake=lake, delta_symlink_manifests=True)
    lake_mod.ensure_table(spark, settings, "quarantine")
    path = lake + "/bronze/quarantine"
    assert spark.read.format("delta").load(path).schema == QUARANTINE_SCHEMA
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert detail["partitionColumns"] == ["tenant_id", "ingest_date"]
    assert detail["properties"] == {lake_mod.STATS_PROPERTY: "file_name,record_ordinal",
                                    **lake_mod.MANIFEST_PROPERTIES}
    d = date(2026, 11, 19)
    no_file = spark.createDataFrame([("t1", d, "f" * 64, "a.csv", 1, "BAD_AMOUNT", None, "raw")], QUARANTINE_SCHEMA)
    with pytest.raises(Exception, match="NOT NULL constraint violated for column: file_name"):
        (no_file.selectExpr(*["CAST(NULL AS string) AS file_name" if f.name == "file_name" else f.name
                              for f in QUARANTINE_SCHEMA.fields])
         .write.format("delta").mode("append").save(path))
    lake_mod.replace_partition(spark, settings, "quarantine", no_file, "t1", d)
    assert lake_mod.read(spark, settings, "quarantine", "t1").count() == 1

    lake_mod.ensure_table(spark, settings, "matches")
    shutil.rmtree(lake + "/gold/matches")
    lake_mod.ensure_table(spark, settings, "matches")           # already ensured in this session: not looked at
    assert not (Path(lake) / "gold" / "matches").exists()


def test_the_latest_date_is_the_same_from_the_log_and_from_a_query(spark, lake):
    """A local lake answers from the partitions its log lists (delta-rs), an S3 lake by a Spark query (lookback
    first, then the whole table): the same dates, also past the lookback, for another tenant and for a day whose
    partition was replaced by no rows."""
    settings = Settings(lake=lake)
    row = lambda t, d: (t, d, "f" * 64, "a.csv", 1, "BAD_AMOUNT", None, "raw")  # noqa: E731
    days = [date(2026, 9, 1), date(2026, 11, 2), date(2026, 11, 10), date(2026, 11, 12)]
    for tenant, day in [("t1", d) for d in days] + [("t2", date(2026, 11, 11))]:
        lake_mod.replace_partition(spark, settings, "quarantine", spark.createDataFrame([row(tenant, day)],
                                                                                        QUARANTINE_SCHEMA), tenant, day)
    lake_mod.replace_partition(spark, settings, "quarantine", spark.createDataFrame([], QUARANTINE_SCHEMA), "t1",
                               date(2026, 11, 12))                        # replaced by nothing: no longer a run day
    cases = {("t1", date(2026, 11, 13), 7): date(2026, 11, 10), ("t1", date(2026, 11, 10), 7): date(2026, 11, 2),
             ("t1", date(2026, 11, 2), 7): date(2026, 9, 1), ("t1", date(2026, 9, 1), 7): None,
             ("t2", date(2026, 11, 20), 3): date(2026, 11, 11), ("t3", date(2026, 11, 20), 45): None}
    for (tenant, before, lookback), expected in cases.items():
        assert lake_mod.latest_date(spark, settings, "quarantine", tenant, before, lookback) == expected
        assert lake_mod._SparkLog().latest_date(spark, settings, "quarantine", tenant, before, lookback) == expected
