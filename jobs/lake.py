"""The lake's Delta tables: where they live, their schemas and partitioning, idempotent writes.

Every table is partitioned by ``tenant_id`` and a business date. A stage that (re)computes the rows of
one tenant and date replaces exactly that partition (Delta ``replaceWhere``), so rerunning a run, a
stage or a whole day yields the same rows, never duplicates; Delta's history keeps what the table
said before (time travel).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.schema import (EVENT_SCHEMA, FEE_CHECK_SCHEMA, FILE_STATS_SCHEMA, ITEM_STATUS_SCHEMA, JOURNAL_SCHEMA,
                         MATCH_SCHEMA, OPEN_ITEM_SCHEMA, QUARANTINE_SCHEMA, conform)
from jobs.settings import Settings


@dataclass(frozen=True)
class Table:
    name: str
    path: str          # relative to the lake root
    schema: StructType
    date_column: str
    # the columns Delta keeps per-file min/max/null-count statistics for (``delta.dataSkippingStatsColumns``):
    # the ids lookups filter on within a partition (a record by file and ordinal, a match, a journal).
    # Delta's default, the first 32 columns, costs a write of the 2.25M events of a 1M day (from a checkpoint,
    # same session, alternating) 18.5-26.0 s instead of 11.8-13.1 s, for columns no query skips files by; in
    # a whole 1M run, where the writes also compute their inputs, the journal write 48.9 -> 43.3 s.
    stats_columns: tuple[str, ...]

    @property
    def partition_columns(self) -> list[str]:
        return ["tenant_id", self.date_column]


TABLES = {t.name: t for t in (
    Table("events", "silver/events", EVENT_SCHEMA, "ingest_date", ("event_id", "file_name", "record_ordinal")),
    Table("quarantine", "bronze/quarantine", QUARANTINE_SCHEMA, "ingest_date", ("file_name", "record_ordinal")),
    Table("file_stats", "bronze/file_stats", FILE_STATS_SCHEMA, "ingest_date", ("file_sha256", "file_name")),
    Table("matches", "gold/matches", MATCH_SCHEMA, "run_date", ("match_id", "event_id", "file_name", "record_ordinal")),
    Table("item_status", "gold/item_status", ITEM_STATUS_SCHEMA, "run_date", ("event_id", "relation", "reason_code")),
    Table("open_items", "silver/open_items", OPEN_ITEM_SCHEMA, "run_date", ("event_id", "relation")),
    Table("journal", "gold/journal_entries", JOURNAL_SCHEMA, "business_date", ("journal_id", "event_id", "match_id")),
    Table("fee_checks", "gold/fee_checks", FEE_CHECK_SCHEMA, "run_date", ("event_id",)),
)}
STATS_PROPERTY = "delta.dataSkippingStatsColumns"
# With ``Settings.delta_symlink_manifests`` (Redshift Spectrum reads the tables through symlink manifests): every
# write updates the manifest of each partition it touched; manifests cannot be written while deletion vectors exist.
MANIFEST_PROPERTIES = {"delta.compatibility.symlinkFormatManifest.enabled": "true", "delta.enableDeletionVectors": "false"}


def table_properties(settings: Settings, table: Table) -> dict[str, str]:
    return {STATS_PROPERTY: ",".join(table.stats_columns),
            **(MANIFEST_PROPERTIES if settings.delta_symlink_manifests else {})}


def table_path(settings: Settings, name: str) -> str:
    return settings.lake_path(TABLES[name].path)


_ENSURED: set[tuple[str, str]] = set()


def ensure_table(spark: SparkSession, settings: Settings, name: str) -> None:
    """Create the Delta table with its declared schema (NOT NULL enforced), partitioning and properties if it does
    not exist; give an older table the columns and properties it lacks (``_evolve``). Once per session and table."""
    key = (spark.sparkContext.applicationId, table_path(settings, name))
    if key in _ENSURED:
        return
    table = TABLES[name]
    path = table_path(settings, name)
    wanted = table_properties(settings, table)
    state = _catalog(settings).create_or_inspect(spark, table, path, wanted)
    if state is not None:
        _evolve(spark, path, table, wanted, *state)
    _ENSURED.add(key)


class _LocalLog:
    """A local lake's table metadata, read and written by delta-rs (the ``deltalake`` package), which reads and
    writes ``_delta_log`` directly, without a Spark query: creating the eight tables takes 0.07-0.2 s (Spark's
    ``DeltaTable.createIfNotExists``: 5.5-7 s warm, 20 s in a new session, beside a test run), the latest date of
    a tenant's partitions a few milliseconds (Spark: a snapshot, a file listing job and an aggregate). Both
    engines commit to a local folder by an atomic rename that fails when the version exists."""

    def create_or_inspect(self, spark: SparkSession, table: Table, path: str,
                          wanted: dict[str, str]) -> tuple[set[str], dict[str, str]] | None:
        """The table's column names and properties; None when it has just been created as declared."""
        from deltalake import DeltaTable as LogTable
        from pyspark.sql.pandas.types import to_arrow_schema

        if not LogTable.is_deltatable(path):
            try:
                LogTable.create(path, to_arrow_schema(table.schema), mode="error",
                                partition_by=table.partition_columns, configuration=wanted,
                                raise_if_key_not_exists=False)
                return None
            except Exception:                     # another process created it first: inspect theirs
                if not LogTable.is_deltatable(path):
                    raise
        log = LogTable(path)
        return {f.name for f in log.schema().fields}, dict(log.metadata().configuration)

    def latest_date(self, spark: SparkSession, settings: Settings, name: str, tenant_id: str, before: date,
                    lookback_days: int) -> date | None:
        """From the partitions the table's log lists for the tenant (those with files: a partition replaced by
        no rows has none), whatever the lookback: reading the log costs the same."""
        from deltalake import DeltaTable as LogTable

        column = TABLES[name].date_column
        log = LogTable(table_path(settings, name))
        dates = (date.fromisoformat(p[column]) for p in log.partitions(file_pruning_predicate=[("tenant_id", "=",
                                                                                                tenant_id)]))
        return max((d for d in dates if d < before), default=None)


class _SparkLog:
    """An S3 lake's table metadata, through Spark: on S3, Delta Spark's log store and delta-rs's conditional
    writes do not exclude each other, so a job on EMR or Glue never uses delta-rs."""

    def create_or_inspect(self, spark: SparkSession, table: Table, path: str,
                          wanted: dict[str, str]) -> tuple[set[str], dict[str, str]]:
        from delta.tables import DeltaTable

        builder = (DeltaTable.createIfNotExists(spark).location(path).addColumns(table.schema)
                   .partitionedBy(*table.partition_columns))
        for key, value in wanted.items():
            builder = builder.property(key, value)
        builder.execute()
        properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}
        return {f.name for f in spark.read.format("delta").load(path).schema.fields}, properties

    def latest_date(self, spark: SparkSession, settings: Settings, name: str, tenant_id: str, before: date,
                    lookback_days: int) -> date | None:
        """Looked for within ``lookback_days`` first (only those partitions listed), then, when a tenant has not
        run for longer, in the whole table."""
        for since in (before - timedelta(days=lookback_days), None):
            row = (read(spark, settings, name, tenant_id, since=since, until=before - timedelta(days=1))
                   .agg(F.max(TABLES[name].date_column).alias("d")).first())
            if row and row["d"] is not None:
                return row["d"]
        return None


def _catalog(settings: Settings) -> _LocalLog | _SparkLog:
    """Where a table's metadata is read and written: chosen once, by the lake's storage."""
    return _SparkLog() if settings.lake_is_s3 else _LocalLog()


def _evolve(spark: SparkSession, path: str, table: Table, wanted: dict[str, str], existing: set[str],
            properties: dict[str, str]) -> None:
    """Schema versions only ever add nullable columns: add the ones an older table lacks. A table created
    before its statistics columns (or its manifests) were declared gets its properties (files written later carry
    only those statistics; manifests are written from the next write on)."""
    missing = [f for f in table.schema.fields if f.name not in existing]
    if missing:
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({columns})")
    changed = {k: v for k, v in wanted.items() if properties.get(k) != v}
    if changed:
        pairs = ", ".join(f"'{k}' = '{v}'" for k, v in changed.items())
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({pairs})")


def read(spark: SparkSession, settings: Settings, name: str, tenant_id: str | None = None, *,
         since: date | None = None, until: date | None = None, also: Iterable[date] = ()) -> DataFrame:
    """The table's rows (of ``tenant_id``), by its business date (``Table.date_column``): from ``since`` to
    ``until`` (inclusive, either open), plus the dates in ``also``. Date filters are partition filters: only
    those partitions' files are opened, so a read bounded by ``since`` costs the same however long the
    history."""
    ensure_table(spark, settings, name)
    df = spark.read.format("delta").load(table_path(settings, name))
    if tenant_id:
        df = df.filter(df.tenant_id == tenant_id)
    column = F.col(TABLES[name].date_column)
    window = None
    if since is not None or until is not None:
        window = F.lit(True)
        if since is not None:
            window = window & (column >= F.lit(since))
        if until is not None:
            window = window & (column <= F.lit(until))
    extra = sorted(set(also))
    if extra:
        window = column.isin(*[F.lit(d) for d in extra]) if window is None else window | column.isin(
            *[F.lit(d) for d in extra])
    return df if window is None else df.filter(window)


def latest_date(spark: SparkSession, settings: Settings, name: str, tenant_id: str, before: date,
                lookback_days: int) -> date | None:
    """The table's latest business date of ``tenant_id`` before ``before``."""
    ensure_table(spark, settings, name)
    return _catalog(settings).latest_date(spark, settings, name, tenant_id, before, lookback_days)


def replace_partition(spark: SparkSession, settings: Settings, name: str, df: DataFrame, tenant_id: str,
                      day: date) -> None:
    """Replace the rows of (tenant, day) with ``df``: idempotent, atomic (one Delta commit)."""
    table = TABLES[name]
    ensure_table(spark, settings, name)
    _check_safe(tenant_id)
    predicate = f"tenant_id = '{tenant_id}' AND {table.date_column} = DATE'{day.isoformat()}'"
    with called_from(spark, f"replace {name}", _caller()):
        (conform(df, table.schema).write.format("delta").mode("overwrite")
         .option("replaceWhere", predicate)
         .save(table_path(settings, name)))


_IN_DRIVER: ContextVar[bool] = ContextVar("materialize_in_driver", default=False)


@contextmanager
def small_data(small: bool = True):
    """Within the block, ``materialize`` keeps its results as rows in the driver (a local relation) instead
    of a checkpoint on the executors. For a run of a few thousand records a checkpoint's fixed cost (its
    job, the conversion to an RDD, a scan job for every later read) is most of the time; a local relation
    is planned like a literal table, and an empty one lets the optimizer drop the joins it feeds. The
    caller decides from the run's size (``Settings.small_run_rows``): the rows are held by the driver and
    shipped inside every task that reads them."""
    token = _IN_DRIVER.set(small)
    try:
        yield
    finally:
        _IN_DRIVER.reset(token)


def materialize(df: DataFrame) -> DataFrame:
    """Compute ``df`` now and cut its lineage. Iterative algorithms (the matching levels) build each
    step on the previous one; without this the query plan grows with every step and planning, not
    data, dominates the run time. Inside ``small_data``: the rows collected into a local relation."""
    spark = df.sparkSession
    with called_from(spark, "materialize", _caller()):
        if _IN_DRIVER.get():
            return DataFrame(spark._jsparkSession.createDataFrame(df._jdf.collectAsList(), df._jdf.schema()), spark)
        return df.localCheckpoint(eager=True)


def checkpoint(df: DataFrame) -> DataFrame:
    """Compute ``df`` now and cut its lineage, on the executors whatever the run's size: for rows that can be
    wide (a parser's, with the raw text of bad records), which a local relation would ship inside every
    task of every later query that reads them."""
    with called_from(df.sparkSession, "checkpoint", _caller()):
        return df.localCheckpoint(eager=True)


_ROOT = Path(__file__).resolve().parents[1]


def _caller() -> str:
    """``path:line`` of the code that called the function calling this one (relative to the project)."""
    frame = sys._getframe(2)
    path = Path(frame.f_code.co_filename)
    return f"{path.relative_to(_ROOT) if path.is_relative_to(_ROOT) else path.name}:{frame.f_lineno}"


@contextmanager
def called_from(spark: SparkSession, what: str, where: str):
    """The Spark jobs started inside are named ``<what> at <where>`` (the call site the Spark UI and the
    event log show): writes and checkpoints started from Python otherwise show a JVM frame, so a
    profile cannot tell which of a stage's many passes took the time (``bench/eventlog.py``)."""
    jsc = spark.sparkContext._jsc
    jsc.setCallSite(f"{what} at {where}")
    try:
        yield
    finally:
        jsc.setCallSite(None)


def _check_safe(tenant_id: str) -> None:
    if not tenant_id.replace("_", "").isalnum():
        raise ValueError(f"invalid tenant id {tenant_id!r}")
