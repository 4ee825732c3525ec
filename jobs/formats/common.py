"""Column helpers shared by the parsers, and the split of parsed rows into events and quarantine.

A parser builds one DataFrame with the canonical columns plus ``_error`` (a reason code, null when
the row is good), ``_error_detail`` and ``_raw``; ``finish`` turns it into the three outputs every
parser returns. All of it is native Spark expressions: no Python UDF touches a row.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from jobs.cards import mask_text  # noqa: F401 - the parsers call it as common.mask_text
from jobs.formats.registry import FormatSpec
from jobs.lake import checkpoint
from jobs.money import CURRENCY_EXPONENTS
from jobs.privacy import hash_pii, mask_card_numbers, redact_emails
from jobs.schema import EVENT_SCHEMA, EVENT_SCHEMA_VERSION, FILE_STATS_SCHEMA, QUARANTINE_SCHEMA, conform
from jobs.spark import arrow_frame, local_frame

# Reason codes for quarantined rows and files.
UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
MALFORMED_ROW = "MALFORMED_ROW"            # wrong column count / unparseable record
BAD_AMOUNT = "BAD_AMOUNT"
AMOUNT_PRECISION = "AMOUNT_PRECISION"      # more decimals than the currency has
UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
WITHDRAWN_CURRENCY = "WITHDRAWN_CURRENCY"    # an ISO 4217 code no longer in use (DEM, FRF, XEU...)
BAD_TIMESTAMP = "BAD_TIMESTAMP"
MISSING_ID = "MISSING_ID"
UNKNOWN_TYPE = "UNKNOWN_TYPE"
INCONSISTENT_AMOUNTS = "INCONSISTENT_AMOUNTS"
CONTROL_TOTAL_MISMATCH = "CONTROL_TOTAL_MISMATCH"
SCHEMA_DRIFT = "SCHEMA_DRIFT"
PARSE_ERROR = "PARSE_ERROR"              # the parser failed on the file (a whole-file refusal; detail: the error)

MAX_MINOR_DIGITS = 18                      # |amount| < 10^18 minor units fits a signed long

# Time zone abbreviations PSPs write (Adyen's TimeZone column) -> fixed UTC offsets.
TZ_ABBREVIATIONS = {
    "UTC": "+00:00", "GMT": "+00:00", "Z": "+00:00", "WET": "+00:00", "WEST": "+01:00", "BST": "+01:00",
    "CET": "+01:00", "CEST": "+02:00", "MET": "+01:00", "MEST": "+02:00", "EET": "+02:00", "EEST": "+03:00",
    "MSK": "+03:00", "GST": "+04:00", "IST": "+05:30", "SGT": "+08:00", "HKT": "+08:00", "AWST": "+08:00",
    "JST": "+09:00", "KST": "+09:00", "AEST": "+10:00", "AEDT": "+11:00", "NZST": "+12:00", "NZDT": "+13:00",
    "AST": "-04:00", "ADT": "-03:00", "EST": "-05:00", "EDT": "-04:00", "CST": "-06:00", "CDT": "-05:00",
    "MST": "-07:00", "MDT": "-06:00", "PST": "-08:00", "PDT": "-07:00", "AKST": "-09:00", "AKDT": "-08:00",
    "HST": "-10:00", "BRT": "-03:00",
}


@dataclass(frozen=True)
class ParseContext:
    tenant_id: str
    ingest_date: date
    pii_salt: str


@dataclass
class ParseOutput:
    """What every parser returns. ``rejected``: files refused whole (sha256 -> (reason, detail));
    ``notes``: per-file remarks for the file summary (sha256 -> text), e.g. unknown columns."""
    events: DataFrame
    quarantine: DataFrame
    stats: DataFrame
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def lookup(mapping: dict, key: Column) -> Column:
    """``mapping[key]`` for a small literal mapping; null when the key is not in it."""
    return F.create_map(*[F.lit(x) for kv in sorted(mapping.items()) for x in kv])[key]


_BY_EXPONENT = {e: sorted(c for c, x in CURRENCY_EXPONENTS.items() if x == e) for e in set(CURRENCY_EXPONENTS.values())}


def exponent_of(currency: Column) -> Column:
    """ISO 4217 exponent of an (upper-cased) currency column; null for an unknown code."""
    expr = None
    for exp, codes in sorted(_BY_EXPONENT.items()):
        expr = (F.when if expr is None else expr.when)(currency.isin(*codes), F.lit(exp))
    return expr


def norm_currency(col: Column) -> Column:
    return F.upper(F.trim(col))


def clean_text(col: Column) -> Column:
    """Trimmed string, empty -> null."""
    trimmed = F.trim(col)
    return F.when(trimmed == "", F.lit(None)).otherwise(trimmed)


def parse_decimal(col: Column, decimal_separator: str = ".") -> Column:
    """A major-unit amount string as decimal(38,9); null when it is not a number."""
    text = F.regexp_replace(F.trim(col), r"^\+", "")
    if decimal_separator != ".":
        text = F.regexp_replace(F.regexp_replace(text, r"\.", ""), decimal_separator, ".")
    return F.when(text.rlike(r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"), text.cast("decimal(38,9)"))


def pow10(exponent: Column) -> Column:
    """10 ** exponent as an exact decimal, for the ISO exponents 0-4."""
    return (F.when(exponent == 0, F.lit(Decimal(1))).when(exponent == 1, F.lit(Decimal(10)))
            .when(exponent == 2, F.lit(Decimal(100))).when(exponent == 3, F.lit(Decimal(1000)))
            .when(exponent == 4, F.lit(Decimal(10000))))


def with_currency(df: DataFrame, out: str, text: Column) -> DataFrame:
    """Adds ``out`` (upper-cased code) and ``<out>_exp`` (its ISO 4217 exponent, null if unknown)."""
    return df.withColumns({out: norm_currency(text), f"{out}_exp": exponent_of(norm_currency(text))})


def _pow10_long(exponent: Column) -> Column:
    """10 ** exponent as a long, for exponents 0 .. ``MAX_MINOR_DIGITS`` (null outside)."""
    return F.element_at(F.array(*[F.lit(10 ** i) for i in range(MAX_MINOR_DIGITS + 1)]), exponent + 1)


def with_minor(df: DataFrame, out: str, text: Column, exponent_col: str, optional: bool = False,
               decimal_separator: str = ".") -> DataFrame:
    """Adds ``out`` (a major-unit amount string as exact integer minor units) and ``<out>_err`` (the
    reason it could not be converted, or null). ``optional``: an empty string is 0 and no error.
    ``with_minors`` converts several amounts at once."""
    return with_minors(df, [Amount(out, text, exponent_col, optional, decimal_separator)])


@dataclass(frozen=True)
class Amount:
    """One amount for ``with_minors``: the output column, the text, its currency's exponent column."""
    out: str
    text: Column
    exponent_col: str
    optional: bool = False
    decimal_separator: str = "."


def with_minors(df: DataFrame, amounts: list[Amount]) -> DataFrame:
    """``with_minor`` for each of ``amounts``, in the same four projections whatever their number (every
    DataFrame step analyses the whole plan again, so a format with a dozen amounts paid for sixty steps).

    Integer arithmetic only, no decimal: the text is checked against the number pattern, split at the
    point, the integer digits (leading zeros dropped) must leave room for the currency's minor digits
    (|amount| < 10^``MAX_MINOR_DIGITS`` minor units), every fraction digit beyond the currency's exponent
    must be 0 (else ``AMOUNT_PRECISION``), and the value is integer x 10^exp + the fraction's first exp
    digits, padded. Staged projections, so that each step is evaluated once per value."""
    names = {a.out: tuple(f"{a.out}_{x}" for x in ("norm", "neg", "abs", "int", "frac", "valid")) for a in amounts}
    df = df.withColumns({names[a.out][0]: _normalized_number(a.text, a.decimal_separator) for a in amounts})
    stage2, stage3, final = {}, {}, {}
    for a in amounts:
        norm, sign, digits_col, whole, frac, valid = names[a.out]
        negative = F.col(norm).startswith("-")
        stage2.update({
            sign: negative,
            digits_col: F.when(negative, F.substring(F.col(norm), 2, 1 << 30)).otherwise(F.col(norm)),
            valid: F.coalesce(F.col(norm).rlike(r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"), F.lit(False)),
        })
        stage3.update({
            whole: F.expr(f"trim(LEADING '0' FROM substring_index(`{digits_col}`, '.', 1))"),
            frac: F.when(F.col(digits_col).contains("."), F.substring_index(digits_col, ".", -1)).otherwise(F.lit("")),
        })
        exp, digits = F.col(a.exponent_col), F.col(frac)
        kept = digits.substr(F.lit(1), exp)
        beyond = digits.substr(exp + 1, F.lit(1 << 30))
        error = (F.when(exp.isNull(), F.lit(UNKNOWN_CURRENCY))
                 .when(~F.col(valid), F.lit(BAD_AMOUNT))
                 .when(F.length(whole) + exp > MAX_MINOR_DIGITS, F.lit(BAD_AMOUNT))
                 .when(F.translate(beyond, "0", "") != "", F.lit(AMOUNT_PRECISION)))
        magnitude = (F.coalesce(F.col(whole).cast("long"), F.lit(0)) * _pow10_long(exp)
                     + F.coalesce(kept.cast("long"), F.lit(0)) * _pow10_long(exp - F.length(kept)))
        scaled = F.when(F.col(sign), -magnitude).otherwise(magnitude)
        if a.optional:
            empty = clean_text(a.text).isNull()
            error = F.when(~empty, error)
            value = F.when(empty, F.lit(0).cast("long")).when(error.isNull(), scaled)
        else:
            value = F.when(error.isNull(), scaled)
        final.update({f"{a.out}_err": error, a.out: value})
    return (df.withColumns(stage2).withColumns(stage3).withColumns(final)
            .drop(*[n for staged in names.values() for n in staged]))


def _normalized_number(col: Column, decimal_separator: str) -> Column:
    """The amount text as ``with_minor`` reads it: blanks, tabs and line breaks around it removed, a leading
    ``+`` dropped, the decimal separator as ``.`` (and ``.`` grouping removed where another separator is
    used). Plain string functions, no regular expression."""
    text = F.btrim(col, F.lit(" \t\r\n"))
    text = F.when(text.startswith("+"), F.substring(text, 2, 1 << 30)).otherwise(text)
    if decimal_separator != ".":
        text = F.translate(F.translate(text, ".", ""), decimal_separator, ".")
    return text


def timestamp_with_abbreviation(local_text: Column, tz_abbrev: Column, pattern: str) -> tuple[Column, Column]:
    """(UTC timestamp, error) for a local time string and a zone abbreviation like CET/PDT."""
    offset = lookup(TZ_ABBREVIATIONS, F.upper(F.trim(tz_abbrev)))
    ts = F.to_timestamp(F.concat(F.trim(local_text), F.lit(" "), offset), f"{pattern} XXX")
    return ts, F.when(offset.isNull() | ts.isNull(), F.lit(BAD_TIMESTAMP))


def event_id(file_sha: Column, ordinal: Column) -> Column:
    return F.substring(F.sha2(F.concat_ws(":", file_sha, ordinal.cast("string")), 256), 1, 32)


# Event columns that are never PAN-masked: constants set by ``finish``, digests, validated codes.
_NOT_MASKED = {"tenant_id", "event_id", "source", "source_kind", "format", "parser_version", "event_type",
               "currency", "presentment_currency", "file_sha256", "file_name", "customer_email_hash",
               "counterparty_name_hash"}
_EMAIL_REDACTED = ("description", "bank_text")


def _protect(df: DataFrame) -> DataFrame:
    """Every free string column PAN-masked; e-mail addresses removed from free text."""
    names = [f.name for f in EVENT_SCHEMA.fields
             if f.name in df.columns and isinstance(f.dataType, StringType) and f.name not in _NOT_MASKED]
    if not names:
        return df
    # two projections for all columns: e-mails out first, then card numbers, so that no regular expression
    # is evaluated twice per value (and the plan does not grow by three projections per column)
    df = df.withColumns({n: redact_emails(F.col(n).cast("string")) if n in _EMAIL_REDACTED
                         else F.col(n).cast("string") for n in names})
    return df.withColumns({n: mask_card_numbers(F.col(n)) for n in names})


def raw_of_errors_only(rows: DataFrame) -> DataFrame:
    """``_raw`` kept only where a quarantine row shows it (``_error`` set): for the records that load it is
    neither built nor cached. Apply before caching parsed rows."""
    return rows.withColumn("_raw", F.when(F.col("_error").isNotNull(), F.col("_raw")))


def finish(parsed: DataFrame, spec: FormatSpec, ctx: ParseContext, extra_stats: DataFrame | None = None,
           rejected: dict | None = None, notes: dict | None = None, files: list | None = None,
           hold: Callable[[DataFrame], tuple[DataFrame, dict[str, tuple[str, str]]]] | None = None) -> ParseOutput:
    """Split parsed rows (canonical columns + _error/_error_detail/_raw + lineage) into outputs.

    An optional boolean ``_skip`` marks records that are read but carry no money movement (a void, a
    pending transaction, a webhook event of another kind): counted in ``records_read``, neither loaded
    nor quarantined, and named in the file's ``detail``. ``extra_stats`` may carry per-file
    ``control_totals_ok`` / ``detail`` (file_sha256 keyed). ``files``: the parsed files, so that one
    without any record (an empty statement day) still gets its stats row. ``hold``: a per-file check of
    the parsed rows (control totals), given the checkpointed rows, returning (``extra_stats``, {file sha:
    (reason, detail)} of the files to hold back whole): the check reads the one computed copy of the rows
    (a parser caching its rows for the check as well kept them twice)."""
    if "_skip" not in parsed.columns:
        parsed = parsed.withColumn("_skip", F.lit(False))
    base = _protect(raw_of_errors_only(parsed)).withColumns({
        "_skip": F.col("_error").isNull() & F.coalesce(F.col("_skip"), F.lit(False)),
        "tenant_id": F.lit(ctx.tenant_id),
        "ingest_date": F.lit(ctx.ingest_date),
        "schema_version": F.lit(EVENT_SCHEMA_VERSION),
        "source": F.lit(spec.source),
        "source_kind": F.lit(spec.source_kind),
        "format": F.lit(spec.format_id),
        "parser_version": F.lit(spec.version),
        "event_id": event_id(F.col("file_sha256"), F.col("record_ordinal")),
    })
    # Three outputs are computed from these rows: parse the input once, now, and cut the plan here. PySpark
    # analyses the whole plan again for every DataFrame derived from it (the outputs, their union over the
    # formats, the writes), and a parser's plan is large: a persisted but uncut plan made analysis most of a
    # parse stage's time. A parser whose rows fail to compute fails here, inside its call, where the parse stage
    # isolates it to its files. Measured on the 39 sample files of 16 formats (the fuzz test's reference
    # batch), second run in one session: 68.4 s uncut, 37.4 s cut by a checkpoint (with ``with_minors``; 44.6 s
    # with the rows kept in the driver instead: a local relation is shipped inside every later task).
    base = checkpoint(base)
    if hold is not None:
        extra_stats, held = hold(base)
        rejected = {**(rejected or {}), **held}
        if held:
            base = base.filter(~F.col("file_sha256").isin(sorted(held)))
    good = base.filter(F.col("_error").isNull() & ~F.col("_skip"))
    bad = base.filter(F.col("_error").isNotNull())
    events = conform(good, EVENT_SCHEMA)
    quarantine = conform(
        bad.withColumns({"reason_code": F.col("_error"),
                         "reason_detail": mask_card_numbers(redact_emails(F.col("_error_detail").cast("string"))),
                         "raw": mask_card_numbers(redact_emails(F.col("_raw")))}),
        QUARANTINE_SCHEMA,
    )
    counts = (base.groupBy("file_sha256", "file_name")
              .agg(F.count(F.lit(1)).alias("records_read"),
                   F.count(F.when(F.col("_error").isNull() & ~F.col("_skip"), 1)).alias("records_loaded"),
                   F.count(F.when(F.col("_error").isNotNull(), 1)).alias("records_quarantined"),
                   F.count(F.when(F.col("_skip"), 1)).alias("_skipped")))
    if files:
        listed = local_frame(base.sparkSession, [(f.sha256, f.file_name) for f in files],
                             "file_sha256 string, file_name string")
        counts = (listed.join(counts.drop("file_name"), "file_sha256", "left")
                  .select("file_sha256", "file_name",
                          *[F.coalesce(F.col(n), F.lit(0).cast("long")).alias(n)
                            for n in ("records_read", "records_loaded", "records_quarantined", "_skipped")]))
    stats = counts.withColumns({"tenant_id": F.lit(ctx.tenant_id), "ingest_date": F.lit(ctx.ingest_date),
                                "source": F.lit(spec.source), "format": F.lit(spec.format_id),
                                "parser_version": F.lit(spec.version)})
    if extra_stats is not None:
        stats = stats.join(extra_stats, on="file_sha256", how="left")
    prior = F.col("detail") if "detail" in stats.columns else F.lit(None).cast("string")
    skipped = F.when(F.col("_skipped") > 0, F.concat(F.col("_skipped").cast("string"),
                                                      F.lit(" record(s) without a money movement skipped")))
    stats = stats.withColumn("detail", mask_card_numbers(F.nullif(F.concat_ws("; ", prior, skipped), F.lit(""))))
    notes = {sha: mask_text(text) for sha, text in (notes or {}).items()}
    rejected = {sha: (reason, mask_text(detail)) for sha, (reason, detail) in (rejected or {}).items()}
    return ParseOutput(events, quarantine, conform(stats, FILE_STATS_SCHEMA), rejected, notes)


def held_files(totals: DataFrame, detail: str) -> tuple[DataFrame, dict[str, tuple[str, str]]]:
    """A ``finish(hold=...)`` result from per-file control totals (file_sha256, control_totals_ok, detail):
    the files whose totals do not add up are held back whole as CONTROL_TOTAL_MISMATCH."""
    totals = totals.cache()      # read twice: collected here, joined into the file statistics later
    held = [r["file_sha256"] for r in totals.filter(F.col("control_totals_ok") == F.lit(False)).collect()]
    return totals, {sha: (CONTROL_TOTAL_MISMATCH, detail) for sha in held}


def hash_email(col: Column, ctx: ParseContext) -> Column:
    return hash_pii(col, ctx.pii_salt)


def nothing_parsed(spark: SparkSession, rejected: dict, notes: dict | None = None) -> ParseOutput:
    """The output of a parser call whose every file was refused whole."""
    out = empty_output(spark)
    out.rejected = {sha: (reason, mask_text(detail)) for sha, (reason, detail) in rejected.items()}
    out.notes = {sha: mask_text(text) for sha, text in (notes or {}).items()}
    return out


def empty_output(spark: SparkSession) -> ParseOutput:
    return ParseOutput(local_frame(spark, [], EVENT_SCHEMA), local_frame(spark, [], QUARANTINE_SCHEMA),
                       local_frame(spark, [], FILE_STATS_SCHEMA))


class DriverRows:
    """Records parsed on the driver (XML, MT940, BAI2, XLSX...), buffered column by column and handed to
    Spark as one Arrow batch stream: fast for a million records, no Python row objects kept."""

    def __init__(self, schema):
        self.schema = schema
        self.columns: dict[str, list] = {f.name: [] for f in schema.fields}
        self.count = 0

    def add(self, **values) -> None:
        for name, values_of in self.columns.items():
            values_of.append(values.get(name))
        self.count += 1

    def to_df(self, spark: SparkSession) -> DataFrame:
        if self.count == 0:
            return local_frame(spark, [], self.schema)
        import pandas as pd
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_type

        arrays = {f.name: pa.array(self.columns[f.name], type=to_arrow_type(f.dataType)) for f in self.schema.fields}
        frame = pa.table(arrays).to_pandas(date_as_object=True, timestamp_as_object=False)
        if not isinstance(frame, pd.DataFrame):
            raise TypeError("expected a pandas DataFrame")
        return arrow_frame(spark, frame, self.schema)
