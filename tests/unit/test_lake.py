"""Delta tables: declared schemas, additive schema evolution, partition replacement by either writer."""
import glob
import json
import re
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


@pytest.mark.parametrize("small", [True, False], ids=["delta-rs", "spark"])
def test_a_write_keeps_statistics_of_the_declared_columns_only(spark, lake, small):
    """Per-file min/max of the ids lookups filter on (a record by file and ordinal), not of every column."""
    settings = Settings(lake=lake)
    d = date(2026, 11, 19)
    rows = [("t1", d, "f" * 64, f"{name}.csv", i, "BAD_AMOUNT", "detail", "raw") for i, name in enumerate("ab", 1)]
    with lake_mod.small_data(small):
        lake_mod.replace_partition(spark, settings, "quarantine", spark.createDataFrame(rows, QUARANTINE_SCHEMA),
                                   "t1", d)
    adds = [json.loads(line)["add"] for log in glob.glob(lake + "/bronze/quarantine/_delta_log/*.json")
            for line in open(log) if '"add"' in line]
    stats = [json.loads(a["stats"]) for a in adds]
    assert stats and all(set(s["minValues"]) == {"file_name", "record_ordinal"} for s in stats)
    assert min(s["minValues"]["file_name"] for s in stats) == "a.csv"
    assert sum(s["numRecords"] for s in stats) == 2


@pytest.mark.parametrize("small", [True, False], ids=["delta-rs", "spark"])
def test_replacing_a_partition_is_idempotent_and_leaves_other_partitions(spark, lake, small):
    """The same whether a small run's rows are committed by delta-rs or a larger run's by Delta's Spark writer,
    and read back by either reader."""
    settings = Settings(lake=lake)
    row = lambda t, d, reason: (t, d, "f" * 64, "a.csv", 1, reason, None, "raw")  # noqa: E731
    d1, d2 = date(2026, 11, 19), date(2026, 11, 20)
    write = lambda t, d, reason: lake_mod.replace_partition(  # noqa: E731
        spark, settings, "quarantine", spark.createDataFrame([row(t, d, reason)], QUARANTINE_SCHEMA), t, d)
    with lake_mod.small_data(small):
        for t, d, reason in [("t1", d1, "BAD_AMOUNT"), ("t1", d1, "BAD_AMOUNT"), ("t1", d2, "MISSING_ID"),
                             ("t2", d1, "BAD_DATE"), ("t1", d1, "UNKNOWN_CURRENCY")]:
            write(t, d, reason)
    commits = [json.loads(line) for log in sorted(glob.glob(lake + "/bronze/quarantine/_delta_log/*.json"))
               for line in open(log)]
    engines = {re.split("[:/]", c["commitInfo"].get("engineInfo") or c["commitInfo"].get("clientVersion", ""))[0]
               .lower() for c in commits if "commitInfo" in c and c["commitInfo"].get("operation") == "WRITE"}
    assert engines == ({"delta-rs"} if small else {"apache-spark"}), engines
    t1_both = [(d1, "UNKNOWN_CURRENCY"), (d2, "MISSING_ID")]
    for reader in (lake_mod._LocalLog(), lake_mod._SparkLog()):
        for tenant, dates, want in [("t1", lake_mod._Dates(), t1_both),
                                    ("t1", lake_mod._Dates(since=d2), [(d2, "MISSING_ID")]),
                                    ("t1", lake_mod._Dates(until=d1, also=(d2,)), t1_both),
                                    ("t2", lake_mod._Dates(also=(d1, d2)), [(d1, "BAD_DATE")]),
                                    (None, lake_mod._Dates(since=d1, until=d1),
                                     [(d1, "BAD_DATE"), (d1, "UNKNOWN_CURRENCY")]),
                                    ("t3", lake_mod._Dates(), [])]:
            got = reader.read(spark, settings, "quarantine", tenant, dates).collect()
            assert sorted((r.ingest_date, r.reason_code) for r in got) == want, (type(reader).__name__, tenant, dates)


def test_a_small_write_refuses_what_delta_refuses_in_one_line_and_writes_nothing(spark, lake):
    settings = Settings(lake=lake)
    d = date(2026, 11, 19)
    good = spark.createDataFrame([("t1", d, "f" * 64, "a.csv", 1, "BAD_AMOUNT", None, "raw")], QUARANTINE_SCHEMA)
    no_file = good.selectExpr(*["CAST(NULL AS string) AS file_name" if f.name == "file_name" else f.name
                                for f in QUARANTINE_SCHEMA.fields])
    with pytest.raises(ValueError, match=r"^NOT NULL constraint violated for column: file_name \(table quarantine\)$"):
        lake_mod.replace_partition(spark, settings, "quarantine", no_file, "t1", d)
    for tenant, day in [("t2", d), ("t1", date(2026, 11, 20))]:
        with pytest.raises(ValueError, match="^rows outside the partition being replaced in quarantine"):
            lake_mod.replace_partition(spark, settings, "quarantine", good, tenant, day)
    assert lake_mod.read(spark, settings, "quarantine").count() == 0
    assert not glob.glob(lake + "/bronze/quarantine/tenant_id=*")


def test_concurrent_small_writes_of_two_tenants_both_land_and_of_one_partition_one_fails(spark, lake):
    """Two tenants' runs replace their own partitions of one table at the same time: both commits land (the one
    that lost the race is checked against the winner's and retried). Two writers of the same partition: one fails,
    never a partition with both writers' rows."""
    from concurrent.futures import ThreadPoolExecutor

    from deltalake import DeltaTable, write_deltalake

    settings = Settings(lake=lake)
    d = date(2026, 11, 19)
    lake_mod.ensure_table(spark, settings, "quarantine")
    path = lake_mod.table_path(settings, "quarantine")
    rows = lambda tenant, i: lake_mod._arrow_rows(spark.createDataFrame(  # noqa: E731
        [(tenant, d, "f" * 64, f"{i}.csv", j, "BAD_AMOUNT", None, "raw") for j in (1, 2)], QUARANTINE_SCHEMA),
        lake_mod.TABLES["quarantine"], tenant, d)
    batches = {(tenant, i): rows(tenant, i) for tenant in ("t1", "t2", "t3") for i in range(6)}

    def write(tenant, i):
        write_deltalake(path, batches[(tenant, i)], mode="overwrite",
                        predicate=lake_mod._partition_predicate(lake_mod.TABLES["quarantine"], tenant, d))

    with ThreadPoolExecutor(3) as pool:                                     # three tenants, six rounds each
        list(pool.map(lambda t: [write(t, i) for i in range(6)], ["t1", "t2", "t3"]))
    table = DeltaTable(path).to_pyarrow_table()
    assert sorted(zip(table["tenant_id"].to_pylist(), table["file_name"].to_pylist())) == [
        (t, "5.csv") for t in ("t1", "t2", "t3") for _ in (1, 2)]

    failures = []

    def contend(i):
        try:
            for _ in range(5):
                write("t1", i)
        except Exception as exc:  # noqa: BLE001
            failures.append(str(exc))

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(contend, [0, 1]))
    files = sorted(r.file_name for r in lake_mod.read(spark, settings, "quarantine", "t1").collect())
    assert files in (["0.csv", "0.csv"], ["1.csv", "1.csv"]), files
    assert all("concurrent" in f for f in failures), failures


def test_a_table_that_needs_more_than_parquet_files_is_read_and_written_by_spark(spark, lake):
    """Deletion vectors (reader version 3): a row deleted by a vector is still in its Parquet file, so reading the
    files would bring it back; such a table is read and written by Delta's Spark reader and writer."""
    settings = Settings(lake=lake)
    d = date(2026, 11, 19)
    rows = [("t1", d, "f" * 64, "a.csv", i, "BAD_AMOUNT", None, "raw") for i in range(1, 4)]
    lake_mod.replace_partition(spark, settings, "quarantine", spark.createDataFrame(rows, QUARANTINE_SCHEMA), "t1", d)
    path = lake_mod.table_path(settings, "quarantine")
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE record_ordinal = 2")
    assert glob.glob(path + "/**/*.bin", recursive=True), "the delete left a deletion vector"
    assert sorted(r.record_ordinal for r in lake_mod.read(spark, settings, "quarantine", "t1").collect()) == [1, 3]
    lake_mod.replace_partition(spark, settings, "quarantine", spark.createDataFrame(rows[:1], QUARANTINE_SCHEMA),
                               "t1", d)
    assert [r.record_ordinal for r in lake_mod.read(spark, settings, "quarantine", "t1").collect()] == [1]


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


@pytest.mark.parametrize("folder", ["my lake", "50% lake[1]"])
def test_a_lake_folder_with_spaces_percent_signs_or_glob_characters_reads_back_what_was_written(spark, tmp_path,
                                                                                                 folder):
    """The log stores file paths URL-encoded; Spark takes ``[`` for a glob pattern and delta-rs decodes ``%20`` in
    a folder's name as a space, so a lake with such a character in its path is kept by Spark."""
    settings = Settings(lake=str(tmp_path / folder))
    d = date(2026, 11, 19)
    rows = [("t1", d, "f" * 64, "a b%.csv", 1, "BAD_AMOUNT", None, "raw")]
    lake_mod.replace_partition(spark, settings, "quarantine", spark.createDataFrame(rows, QUARANTINE_SCHEMA), "t1", d)
    assert [(r.file_name, r.ingest_date) for r in lake_mod.read(spark, settings, "quarantine", "t1", since=d)
            .collect()] == [("a b%.csv", d)]
    assert type(lake_mod._catalog(settings)).__name__ == ("_LocalLog" if folder == "my lake" else "_SparkLog")
