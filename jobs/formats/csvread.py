"""Reading delivered CSV files in Spark, mapped by header name, with record ordinals and raw text.

Column order and subsets vary (Stripe's ``columns=`` parameter, Adyen's layouts), so a file is never
read by position: the header line of each file is read first (on the driver, a few bytes), files are
grouped by identical header, each group is read with an all-string schema named after its header,
and the groups are unioned by name. Header names are normalised (lower case, non-alphanumerics to
``_``): ``Gross Debit (GC)`` -> ``gross_debit_gc``.

Record ordinals (1-based index among the file's data rows) come from the input split's start offset
and the row's position inside the split, which preserves file order for any number of splits.
"""
from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs import storage
from jobs.formats.registry import BOM
from jobs.landing import LandedFile
from jobs.settings import Settings

CORRUPT = "_corrupt_record"
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize_header(name: str) -> str:
    return _NON_ALNUM.sub("_", name.strip().lower()).strip("_")


@dataclass
class CsvRead:
    records: DataFrame | None                       # normalised header columns + lineage + _raw, _malformed
    columns_by_file: dict[str, list[str]] = field(default_factory=dict)   # sha -> normalised header


def read_header(settings: Settings, f: LandedFile) -> list[str]:
    head = storage.read_head(settings, f.raw_uri, 256 * 1024).removeprefix(BOM).decode("utf-8", errors="replace")
    first = head.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    return [normalize_header(c) for c in next(csv.reader(io.StringIO(first)), [])]


def file_sha_from_path(path_col):
    """Raw-zone objects are named ``<sha256>-<name>``: the lineage key is in the path."""
    return F.regexp_extract(path_col, r"/([0-9a-f]{64})-[^/]*$", 1)


def with_ordinals(df: DataFrame, files: list[LandedFile]) -> DataFrame:
    """Adds file_sha256, file_name and record_ordinal (1-based, file order) to rows read with
    ``_file_path``, ``_block_start`` (the input split's start offset) and ``_row_in_split``
    (``monotonically_increasing_id()`` taken right at the scan).

    The rows of one split are read in file order, one after the other, inside one partition, so a row's
    ordinal is the number of rows in the file's earlier splits plus its position in its own split. Both
    come from a small per-split aggregate (one row per split) joined back by broadcast: the records
    themselves are never shuffled or sorted (a window over the file would sort a whole file in one task)."""
    names = F.create_map(*[F.lit(x) for f in files for x in (f.sha256, f.file_name)])
    keyed = df.withColumn("file_sha256", file_sha_from_path(F.col("_file_path"))).drop("_file_path")
    splits = keyed.groupBy("file_sha256", "_block_start").agg(F.count(F.lit(1)).alias("_rows"),
                                                              F.min("_row_in_split").alias("_first"))
    earlier = Window.partitionBy("file_sha256").orderBy("_block_start").rowsBetween(Window.unboundedPreceding, -1)
    offsets = splits.select("file_sha256", "_block_start", "_first",
                            F.coalesce(F.sum("_rows").over(earlier), F.lit(0)).alias("_before"))
    ordinal = F.col("_before") + F.col("_row_in_split") - F.col("_first") + 1
    return (keyed.join(F.broadcast(offsets), ["file_sha256", "_block_start"])
            .withColumn("file_name", names[F.col("file_sha256")])
            .withColumn("record_ordinal", ordinal.cast("int"))
            .drop("_block_start", "_row_in_split", "_first", "_before"))


def read_csv(spark: SparkSession, settings: Settings, files: list[LandedFile]) -> CsvRead:
    groups: dict[tuple[str, ...], list[LandedFile]] = defaultdict(list)
    result = CsvRead(records=None)
    for f in files:
        header = read_header(settings, f)
        result.columns_by_file[f.sha256] = header
        groups[tuple(header)].append(f)
    frames = []
    for header, members in groups.items():
        physical = [f"c{i}" for i in range(len(header))]
        schema = StructType([StructField(c, StringType()) for c in physical] + [StructField(CORRUPT, StringType())])
        df = (spark.read.schema(schema)
              .option("header", True).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
              .option("multiLine", False).option("escape", '"').option("encoding", "UTF-8")
              .csv([storage.spark_uri(f.raw_uri) for f in members]))
        df = df.select(
            *[F.col(p).alias(h) for p, h in zip(physical, header) if h],
            F.col(CORRUPT),
            F.col("_metadata.file_path").alias("_file_path"),
            F.col("_metadata.file_block_start").alias("_block_start"),
            F.monotonically_increasing_id().alias("_row_in_split"),
        )
        raw = F.coalesce(F.col(CORRUPT), F.concat_ws(",", *[F.coalesce(F.col(h), F.lit("")) for h in header if h]))
        frames.append(df.withColumn("_raw", raw).withColumn("_malformed", F.col(CORRUPT).isNotNull()).drop(CORRUPT))
    if frames:
        combined = frames[0]
        for other in frames[1:]:
            combined = combined.unionByName(other, allowMissingColumns=True)
        result.records = with_ordinals(combined, files)
    return result


def col_or_null(df: DataFrame, *names: str):
    """The first of ``names`` present in ``df`` (normalised header names), else a null column."""
    for name in names:
        if name in df.columns:
            return F.col(name)
    return F.lit(None).cast("string")


@dataclass
class CheckedCsv:
    records: DataFrame | None          # rows of the files whose header passed the check
    rejected: dict[str, tuple[str, str]]
    notes: dict[str, str]


def read_checked_csv(spark: SparkSession, settings: Settings, files: list[LandedFile],
                     required: list[tuple[str, ...]], known: set[str], known_patterns: tuple[str, ...] = ()) -> CheckedCsv:
    """``read_csv`` plus the schema-drift check of every file's header (see ``jobs.formats.drift``)."""
    from jobs.formats.drift import check_header

    read = read_csv(spark, settings, files)
    rejected, notes = {}, {}
    for sha, header in read.columns_by_file.items():
        check = check_header(header, required, known, known_patterns)
        if not check.ok:
            rejected[sha] = ("SCHEMA_DRIFT", check.describe())
        elif check.describe():
            notes[sha] = check.describe()
    records = read.records
    if rejected and records is not None:
        records = records.filter(~F.col("file_sha256").isin(list(rejected)))
    return CheckedCsv(records, rejected, notes)
