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
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from jobs.schema import (EVENT_SCHEMA, FEE_CHECK_SCHEMA, FILE_STATS_SCHEMA, ITEM_STATUS_SCHEMA, JOURNAL_SCHEMA,
                         MATCH_SCHEMA, OPEN_ITEM_SCHEMA, QUARANTINE_SCHEMA, conform)
from jobs.settings import Settings
from jobs.spark import local_frame


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
    """A local lake's tables through delta-rs (the ``deltalake`` package), which reads and writes ``_delta_log``
    directly, without a Spark query: creating the eight tables takes 0.07-0.2 s (Spark's
    ``DeltaTable.createIfNotExists``: 5.5-7 s warm, 20 s in a new session, beside a test run), the latest date of
    a tenant's partitions a few milliseconds (Spark: a snapshot, a file listing job and an aggregate).

    Reads: delta-rs lists the files of the table's current version in the partitions asked for, and Spark reads
    those Parquet files; Delta's Spark reader would first compute the table's snapshot and run a query over it
    to choose the files (a Spark job per read). Writes of a small run (``small_data``: its rows are few and
    collected to the driver) are one delta-rs commit of those rows as Arrow; larger writes, and tables whose
    symlink manifests Spark keeps (``Settings.delta_symlink_manifests``), go through Delta's Spark writer.
    Tables that need more than the first protocol (deletion vectors, column mapping: reader version > 1,
    writer version > 2) are read and written by Spark only. Both engines commit to a local folder by an atomic
    rename that fails when the version exists; a commit that lost a race is checked against the winner's
    (a concurrent write to the same partition fails, one to another tenant's partition goes through).
    The slice (tests/data/slice), runs 2-4 of one session: 23.7-24.4 s with Spark's reader and writer,
    14.6-15.4 s this way (213 Spark jobs a run -> 133); a first run 49.8 -> 33.6 s."""

    def create_or_inspect(self, spark: SparkSession, table: Table, path: str,
                          wanted: dict[str, str]) -> tuple[set[str], dict[str, str]] | None:
        """The table's column names and properties; None when it has just been created as declared."""
        from deltalake import DeltaTable as LogTable
        from pyspark.sql.pandas.types import to_arrow_schema

        uri = _log_uri(path)
        if not LogTable.is_deltatable(uri):
            try:
                LogTable.create(uri, to_arrow_schema(table.schema), mode="error",
                                partition_by=table.partition_columns, configuration=wanted,
                                raise_if_key_not_exists=False)
                return None
            except Exception:                     # another process created it first: inspect theirs
                if not LogTable.is_deltatable(uri):
                    raise
        log = LogTable(uri)
        return {f.name for f in log.schema().fields}, dict(log.metadata().configuration)

    def latest_date(self, spark: SparkSession, settings: Settings, name: str, tenant_id: str, before: date,
                    lookback_days: int) -> date | None:
        """From the partitions the table's log lists for the tenant (those with files: a partition replaced by
        no rows has none), whatever the lookback: reading the log costs the same."""
        from deltalake import DeltaTable as LogTable

        column = TABLES[name].date_column
        log = LogTable(_log_uri(table_path(settings, name)))
        dates = (date.fromisoformat(p[column]) for p in log.partitions(file_pruning_predicate=[("tenant_id", "=",
                                                                                                tenant_id)]))
        return max((d for d in dates if d < before), default=None)

    def read(self, spark: SparkSession, settings: Settings, name: str, tenant_id: str | None,
             dates: _Dates) -> DataFrame:
        from deltalake import DeltaTable as LogTable

        table, path = TABLES[name], table_path(settings, name)
        log = LogTable(_log_uri(path))
        if not _first_protocol(log):
            return _SparkLog().read(spark, settings, name, tenant_id, dates)
        files = dates.files(log, path, table, tenant_id)
        if not files:
            return empty(spark, name)
        df = spark.read.schema(_read_schema(table)).option("basePath", path).parquet(*files)
        return dates.filtered(df, table, tenant_id)

    def replace(self, spark: SparkSession, settings: Settings, name: str, rows: DataFrame, tenant_id: str,
                day: date) -> None:
        from deltalake import DeltaTable as LogTable
        from deltalake import write_deltalake

        table = TABLES[name]
        log = LogTable(_log_uri(table_path(settings, name))) if _IN_DRIVER.get() else None
        if log is None or settings.delta_symlink_manifests or not _first_protocol(log):
            _SparkLog().replace(spark, settings, name, rows, tenant_id, day)
            return
        # only inside ``small_data``: the caller decided the rows are few (``Settings.small_run_rows``)
        data = _arrow_rows(rows, table, tenant_id, day)
        write_deltalake(log, data, mode="overwrite", predicate=_partition_predicate(table, tenant_id, day))


def _log_uri(path: str) -> str:
    """A local table's location as a ``file://`` URI for delta-rs."""
    return Path(path.removeprefix("file:")).absolute().as_uri()


def _first_protocol(log) -> bool:
    """Whether a table needs no more of a reader than its Parquet files and log (reader 1, writer 2)."""
    protocol = log.protocol()
    return protocol.min_reader_version <= 1 and protocol.min_writer_version <= 2


def _arrow_rows(rows: DataFrame, table: Table, tenant_id: str, day: date):
    """The rows as one Arrow table of the table's schema, checked as Delta's Spark writer checks them: every row
    in the partition being replaced, no null in a NOT NULL column (one-line errors, before anything is written)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql.pandas.types import to_arrow_schema

    from jobs.store.arrow_copy import arrow_batches

    schema = to_arrow_schema(table.schema)
    batches = arrow_batches(rows)
    if not batches:
        return schema.empty_table()
    data = pa.Table.from_batches(batches)
    for field in table.schema.fields:
        if not field.nullable and data.column(field.name).null_count:
            raise ValueError(f"NOT NULL constraint violated for column: {field.name} (table {table.name})")
    data = data.cast(schema)
    for column, value in (("tenant_id", tenant_id), (table.date_column, day)):
        if not pc.all(pc.equal(data.column(column), pa.scalar(value, schema.field(column).type))).as_py():
            raise ValueError(f"rows outside the partition being replaced in {table.name} "
                             f"({_partition_predicate(table, tenant_id, day)})")
    return data


def _partition_predicate(table: Table, tenant_id: str, day: date) -> str:
    """The SQL predicate of one (tenant, business date) partition, as Spark and delta-rs both read it."""
    _check_safe(tenant_id)
    return f"tenant_id = '{tenant_id}' AND {table.date_column} = DATE'{day.isoformat()}'"


class _SparkLog:
    """An S3 lake's tables, through Delta's Spark reader and writer: on S3, Delta Spark's log store and delta-rs's
    conditional writes do not exclude each other, so a job on EMR or Glue never uses delta-rs."""

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
            row = (self.read(spark, settings, name, tenant_id, _Dates(since, before - timedelta(days=1)))
                   .agg(F.max(TABLES[name].date_column).alias("d")).first())
            if row and row["d"] is not None:
                return row["d"]
        return None

    def read(self, spark: SparkSession, settings: Settings, name: str, tenant_id: str | None,
             dates: _Dates) -> DataFrame:
        return dates.filtered(spark.read.format("delta").load(table_path(settings, name)), TABLES[name], tenant_id)

    def replace(self, spark: SparkSession, settings: Settings, name: str, rows: DataFrame, tenant_id: str,
                day: date) -> None:
        (rows.write.format("delta").mode("overwrite")
         .option("replaceWhere", _partition_predicate(TABLES[name], tenant_id, day))
         .save(table_path(settings, name)))


@dataclass(frozen=True)
class _Dates:
    """Which business dates a read wants: ``since`` to ``until`` (inclusive, either open) and the dates in
    ``also``; all of them when none is given."""
    since: date | None = None
    until: date | None = None
    also: tuple[date, ...] = ()

    def filtered(self, df: DataFrame, table: Table, tenant_id: str | None) -> DataFrame:
        """``df`` filtered to the tenant and the dates (partition filters for Delta's reader)."""
        if tenant_id:
            df = df.filter(df.tenant_id == tenant_id)
        column = F.col(table.date_column)
        window = None
        if self.since is not None or self.until is not None:
            window = F.lit(True)
            if self.since is not None:
                window = window & (column >= F.lit(self.since))
            if self.until is not None:
                window = window & (column <= F.lit(self.until))
        if self.also:
            extra = column.isin(*[F.lit(d) for d in self.also])
            window = extra if window is None else window | extra
        return df if window is None else df.filter(window)

    def wants(self, day: date) -> bool:
        """Whether rows of ``day`` are wanted (what ``filtered`` keeps of a tenant's rows)."""
        in_window = self.since is not None or self.until is not None
        if in_window and (self.since is None or day >= self.since) and (self.until is None or day <= self.until):
            return True
        return day in self.also or not (in_window or self.also)

    def files(self, log, path: str, table: Table, tenant_id: str | None) -> list[str]:
        """The data files of the table's current version (a delta-rs ``DeltaTable``) in the partitions wanted:
        their log paths (relative, URL-encoded as the protocol says) below ``path``."""
        import pyarrow as pa

        actions = pa.table(log.get_add_actions(flatten=True))
        if not actions.num_rows:
            return []
        rows = zip(actions["path"].to_pylist(), actions["partition.tenant_id"].to_pylist(),
                   actions[f"partition.{table.date_column}"].to_pylist())
        return [f"{path}/{unquote(relative)}" for relative, tenant, day in rows
                if (tenant_id is None or tenant == tenant_id) and self.wants(day)]


# Characters in a local lake's path that only Spark copes with: Spark's file reader takes the glob characters
# for a pattern, and delta-rs decodes a folder's ``%20`` as a space (also from a ``file://`` URI).
SPARK_ONLY_CHARACTERS = "%{}[]*?\\"


def _catalog(settings: Settings) -> _LocalLog | _SparkLog:
    """How the tables are read and written and their metadata kept: chosen once, by the lake's storage (and a
    local lake whose path has a character only Spark copes with is kept by Spark, as S3)."""
    if settings.lake_is_s3 or any(c in settings.lake for c in SPARK_ONLY_CHARACTERS):
        return _SparkLog()
    return _LocalLog()


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
    history (a local lake lists the files of those partitions when this is called). Compute what you read
    before writing the same partition: on a local lake the DataFrame reads the table as it was when this was
    called, on S3 as it is when an action runs."""
    ensure_table(spark, settings, name)
    return _catalog(settings).read(spark, settings, name, tenant_id, _Dates(since, until, tuple(sorted(set(also)))))


def empty(spark: SparkSession, name: str) -> DataFrame:
    """No rows, with the table's columns (without reading it)."""
    return local_frame(spark, [], _read_schema(TABLES[name]))


def _read_schema(table: Table) -> StructType:
    """The table's columns as a reader gives them (nullable: NOT NULL is enforced on write)."""
    return StructType([StructField(f.name, f.dataType, True, f.metadata) for f in table.schema.fields])


def latest_date(spark: SparkSession, settings: Settings, name: str, tenant_id: str, before: date,
                lookback_days: int) -> date | None:
    """The table's latest business date of ``tenant_id`` before ``before``."""
    ensure_table(spark, settings, name)
    return _catalog(settings).latest_date(spark, settings, name, tenant_id, before, lookback_days)


def replace_partition(spark: SparkSession, settings: Settings, name: str, df: DataFrame, tenant_id: str,
                      day: date) -> None:
    """Replace the rows of (tenant, day) with ``df``: idempotent, atomic (one Delta commit)."""
    ensure_table(spark, settings, name)
    _check_safe(tenant_id)
    with called_from(spark, f"replace {name}", _caller()):
        _catalog(settings).replace(spark, settings, name, conform(df, TABLES[name].schema), tenant_id, day)


_IN_DRIVER: ContextVar[bool] = ContextVar("materialize_in_driver", default=False)


@contextmanager
def small_data(small: bool = True):
    """Within the block, ``materialize`` keeps its results as rows in the driver (a local relation) instead
    of a checkpoint on the executors. For a run of a few thousand records a checkpoint's fixed cost (its
    job, the conversion to an RDD, a scan job for every later read) is most of the time; a local relation
    is planned like a literal table, and an empty one lets the optimizer drop the joins it feeds. On a local
    lake, ``replace_partition`` commits the rows it is given from the driver too (delta-rs, ``_LocalLog``). The
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
