"""Delta tables: declared schemas, additive schema evolution, partition replacement."""
from datetime import date

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



