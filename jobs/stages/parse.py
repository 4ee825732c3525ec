"""Parse and normalise the files landed for a tenant and business date into the canonical tables.

Writes (replacing the (tenant, date) partition): ``silver/events`` (good rows), ``bronze/quarantine``
(bad rows with reason, and whole files refused), ``bronze/file_stats`` (rows read / loaded /
quarantined and control totals per file). Returns the per-file summary for the manifest.

Bad input never stops the stage: each format's parser gets all of that format's files at once; when it
raises (on the driver, or when Spark computes its rows, which ``common.finish`` does within the parser's
call; its per-file statistics are collected before anything is written, and a failed write looks for the
group at fault), its files are split in
halves and parsed again, down to single files, so a file whose parser raises is refused whole
(``PARSE_ERROR``, with the error on one line) and every other file is loaded as usual. Only errors that
say nothing about a file's content (the lake cannot be read, the Spark session is gone) still fail the
stage. The normal path costs what it did: the extra work runs only for a group that failed.
"""
from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import reduce

from pyspark.sql import DataFrame, SparkSession

from jobs import lake
from jobs.formats import common as c
from jobs.formats.registry import UNKNOWN_FORMAT, by_id
from jobs.landing import LandedFile
from jobs.schema import FILE_STATS_SCHEMA, QUARANTINE_SCHEMA
from jobs.settings import Settings
from jobs.spark import local_frame

log = logging.getLogger(__name__)
DETAIL_CHARS = 400


@dataclass(frozen=True)
class FileSummary:
    sha256: str
    file_name: str
    format: str
    parser_version: str | None
    records_read: int
    records_loaded: int
    records_quarantined: int
    control_totals_ok: bool | None
    detail: str | None


@dataclass(eq=False)
class _Part:
    """One parser call's output for some files of one format. ``stats``: its per-file statistics once
    collected; ``checked``: every output computed once without error (so its write cannot fail on the data)."""
    format_id: str
    files: list[LandedFile]
    out: c.ParseOutput
    stats: dict[str, dict] | None = None
    checked: bool = False


@dataclass
class _Stage:
    spark: SparkSession
    settings: Settings
    ctx: c.ParseContext
    failed: dict[str, tuple[LandedFile, str]] = field(default_factory=dict)   # sha -> (file, one-line error)

    def parse(self, format_id: str, files: list[LandedFile], check: bool = False) -> list[_Part]:
        """The parser on ``files``; when it raises, each half again, down to single files. ``check``: compute
        the outputs now too (when the group failed while its rows were computed)."""
        try:
            part = _Part(format_id, files, _parser(format_id)(self.spark, self.settings, by_id(format_id), files,
                                                              self.ctx))
        except Exception as exc:   # noqa: BLE001 - any parser error is isolated to its files
            _reraise_if_not_about_content(self.spark, exc)
            return self.split(format_id, files, exc, check)
        if check:
            try:
                self.check(part)
            except Exception as exc:   # noqa: BLE001
                _reraise_if_not_about_content(self.spark, exc)
                return self.split(format_id, files, exc, True)
        return [part]

    def split(self, format_id: str, files: list[LandedFile], exc: Exception, check: bool) -> list[_Part]:
        if len(files) == 1:
            f = files[0]
            detail = describe_error(exc)
            log.warning("%s parser failed on %s (%s): %s", format_id, f.file_name, f.sha256[:12], detail)
            self.failed[f.sha256] = (f, detail)
            return []
        log.warning("%s parser failed on a group of %d files (%s); parsing them again in halves",
                    format_id, len(files), describe_error(exc))
        half = len(files) // 2
        return self.parse(format_id, files[:half], check) + self.parse(format_id, files[half:], check)

    def check(self, part: _Part) -> None:
        """Compute all three outputs of a part now (the fallback path only: rows that fail surface here)."""
        part.stats = _collect_stats([part.out.stats])
        for df in (part.out.events, part.out.quarantine):
            df.write.format("noop").mode("overwrite").save()
        part.checked = True

    def recheck(self, parts: list[_Part], stats_only: bool) -> list[_Part]:
        """Each part evaluated on its own; a part that fails is parsed again in halves."""
        kept = []
        for part in parts:
            try:
                if stats_only:
                    part.stats = _collect_stats([part.out.stats])
                else:
                    self.check(part)
                kept.append(part)
            except Exception as exc:   # noqa: BLE001
                _reraise_if_not_about_content(self.spark, exc)
                kept += self.split(part.format_id, part.files, exc, True)
        return kept


def _parser(format_id: str):
    module, func = by_id(format_id).parser.split(":")
    return getattr(importlib.import_module(module), func)


def _union(frames: list[DataFrame]) -> DataFrame:
    return reduce(lambda a, b: a.unionByName(b), frames)


# A parser's projections alias many expressions of the same columns (a dozen amounts, each staged in four
# projections; card-number masking of every text column). Catalyst's constraint propagation rewrites every
# known constraint for every alias, which grows exponentially with such projections (a format test's query
# spent minutes of CPU in Project.validConstraints); the parse stage joins only on file hashes, which are never
# null, so the filters it infers from constraints buy nothing here.
#
# A parser's rows are wide (30-40 columns), too wide for whole-stage code generation to give each operator its
# own method, so a scan and its projections become one generated method: 32 KB of bytecode for Adyen's
# settlement details, 20 KB for Stripe's itemized payouts. HotSpot never compiles a method above 8,000 bytes
# (C1 and C2 both gave up on Adyen's even with -XX:-DontCompileHugeMethods: "out of virtual registers", "out
# of nodes"): it ran interpreted, 48% of the executor's JFR samples. With Spark's ``hugeMethodLimit`` at the
# JVM's limit, such a stage runs its operators as separately compiled projections instead; a stage whose
# methods are below it (the book JSON reader's largest is 7.6 KB) is unchanged. Adyen, 475,927 records, warm
# runs in one session: 24.9 / 24.3 s -> 17.0 / 15.0 s.
PARSE_SESSION_CONF = {"spark.sql.constraintPropagation.enabled": "false",
                      "spark.sql.codegen.hugeMethodLimit": "8000"}


def parse_files(spark: SparkSession, settings: Settings, tenant_id: str, ingest_date: date,
                files: list[LandedFile], pii_salt: str) -> list[FileSummary]:
    from jobs.spark import session_conf

    with session_conf(spark, PARSE_SESSION_CONF):
        return _parse_files(spark, settings, tenant_id, ingest_date, files, pii_salt)


def _parse_files(spark: SparkSession, settings: Settings, tenant_id: str, ingest_date: date,
                 files: list[LandedFile], pii_salt: str) -> list[FileSummary]:
    stage = _Stage(spark, settings, c.ParseContext(tenant_id, ingest_date, pii_salt))
    by_format: dict[str, list[LandedFile]] = defaultdict(list)
    for f in files:
        by_format[f.format].append(f)
    parts: list[_Part] = []
    unknown: list[LandedFile] = []
    for format_id, group in sorted(by_format.items()):
        if format_id == UNKNOWN_FORMAT:
            unknown += group
            continue
        log.info("parsing %d %s file(s) for %s %s", len(group), format_id, tenant_id, ingest_date)
        parts += stage.parse(format_id, group)
    # Each parser computed its rows in ``finish``; the statistics of all formats are collected in one Spark
    # job, and only when that fails, each group on its own.
    pending = [p for p in parts if p.stats is None]
    done = [p for p in parts if p.stats is not None]
    if pending:
        try:
            collected = _collect_stats([p.out.stats for p in pending])
            for p in pending:
                p.stats = {f.sha256: collected[f.sha256] for f in p.files if f.sha256 in collected}
        except Exception as exc:   # noqa: BLE001
            _reraise_if_not_about_content(spark, exc)
            log.warning("collecting file statistics failed (%s); checking each format on its own", describe_error(exc))
            parts = done + stage.recheck(pending, stats_only=True)
    try:
        summary = _write(spark, settings, tenant_id, ingest_date, parts, unknown, stage.failed)
    except Exception as exc:   # noqa: BLE001
        _reraise_if_not_about_content(spark, exc)
        unchecked = [p for p in parts if not p.checked]
        before = set(stage.failed)
        parts = [p for p in parts if p.checked] + stage.recheck(unchecked, stats_only=False)
        if set(stage.failed) == before:
            raise                      # no file is at fault: the write itself failed
        log.warning("writing the parsed rows failed (%s); writing again without the files at fault",
                    describe_error(exc))
        summary = _write(spark, settings, tenant_id, ingest_date, parts, unknown, stage.failed)
    spark.catalog.clearCache()
    return summary


def _write(spark: SparkSession, settings: Settings, tenant_id: str, ingest_date: date, parts: list[_Part],
           unknown: list[LandedFile], failed: dict[str, tuple[LandedFile, str]]) -> list[FileSummary]:
    rejected: dict[str, tuple[LandedFile, str, str]] = {
        f.sha256: (f, c.UNKNOWN_FORMAT, "no parser recognises this file's content") for f in unknown}
    notes: dict[str, str] = {}
    stats_rows: dict[str, dict] = {}
    for p in parts:
        names = {f.sha256: f for f in p.files}
        rejected.update({sha: (names[sha], reason, detail) for sha, (reason, detail) in p.out.rejected.items()})
        notes.update(p.out.notes)
        stats_rows.update(p.stats or {})
    rejected.update({sha: (f, c.PARSE_ERROR, detail) for sha, (f, detail) in failed.items()})
    whole_file_rows = [
        {"tenant_id": tenant_id, "ingest_date": ingest_date, "file_sha256": f.sha256, "file_name": f.file_name,
         "record_ordinal": None, "reason_code": reason, "reason_detail": detail, "raw": None}
        for f, reason, detail in rejected.values()
    ]
    for f, reason, detail in rejected.values():
        stats_rows[f.sha256] = {
            "tenant_id": tenant_id, "ingest_date": ingest_date, "file_sha256": f.sha256, "file_name": f.file_name,
            "source": f.source, "format": f.format, "parser_version": f.parser_version,
            "records_read": stats_rows.get(f.sha256, {}).get("records_read", 0), "records_loaded": 0,
            "records_quarantined": 0, "control_totals_ok": False if reason == c.CONTROL_TOTAL_MISMATCH else None,
            "detail": f"{reason}: {detail}",
        }
    for sha, note in notes.items():
        if sha in stats_rows:
            prior = stats_rows[sha].get("detail")
            stats_rows[sha]["detail"] = "; ".join(filter(None, [prior, note]))
    empty = c.empty_output(spark)
    events = _union([empty.events] + [p.out.events for p in parts])
    quarantine = _union([p.out.quarantine for p in parts] + [local_frame(spark, whole_file_rows, QUARANTINE_SCHEMA)])
    # a day of a few thousand records is written from the driver (``lake.small_data``)
    with lake.small_data(sum(r["records_read"] or 0 for r in stats_rows.values()) <= settings.small_run_rows):
        lake.replace_partition(spark, settings, "events", events, tenant_id, ingest_date)
        lake.replace_partition(spark, settings, "quarantine", quarantine, tenant_id, ingest_date)
        lake.replace_partition(spark, settings, "file_stats", local_frame(spark, stats_rows.values(), FILE_STATS_SCHEMA),
                               tenant_id, ingest_date)
    by_sha = {f.sha256: f for p in parts for f in p.files} | {f.sha256: f for f, _, _ in rejected.values()}
    return [FileSummary(sha, r["file_name"], r["format"], r["parser_version"], r["records_read"], r["records_loaded"],
                        r["records_quarantined"], r["control_totals_ok"], r["detail"])
            for sha, r in sorted(stats_rows.items(), key=lambda kv: by_sha[kv[0]].file_name)]


def _collect_stats(stats: list[DataFrame]) -> dict[str, dict]:
    if not stats:
        return {}
    return {r["file_sha256"]: r.asDict() for r in _union(stats).collect()}


def _java_chain(exc: BaseException) -> list:
    """The JVM exception behind a PySpark error and its causes (empty for a Python error)."""
    origin = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    chain = []
    try:
        while origin is not None and len(chain) < 20 and all(not origin.equals(x) for x in chain):
            chain.append(origin)
            origin = origin.getCause()
    except Exception:   # noqa: BLE001 - the JVM is gone: the chain is what we have
        pass
    return chain


def describe_error(exc: BaseException) -> str:
    """An error on one line: the root cause's type and the first line of its message, card numbers masked."""
    chain = _java_chain(exc)
    name, message = type(exc).__name__, str(exc)
    if chain:
        try:
            root = chain[-1]
            name, message = root.getClass().getSimpleName(), root.getMessage() or ""
        except Exception:   # noqa: BLE001
            pass
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    text = f"{name}: {first}" if first else name
    if len(text) > DETAIL_CHARS:
        text = text[:DETAIL_CHARS - 3] + "..."
    return c.mask_text(text)


def _is_instance(spark: SparkSession, java_obj, class_name: str) -> bool:
    try:
        return bool(spark._jvm.java.lang.Class.forName(class_name).isInstance(java_obj))
    except Exception:   # noqa: BLE001
        return False


def _reraise_if_not_about_content(spark: SparkSession, exc: Exception) -> None:
    """Errors that say nothing about the files being parsed fail the stage (the run is retried): the Spark
    session or its JVM is gone, memory ran out, a time limit passed (a broadcast on an overloaded machine),
    the lake could not be read (an I/O error, except a character decoding error, which is about the
    content)."""
    from py4j.protocol import Py4JNetworkError

    if isinstance(exc, (MemoryError, Py4JNetworkError, OSError)):
        raise exc
    try:
        stopped = spark.sparkContext._jsc is None or spark.sparkContext._jsc.sc().isStopped()
    except Exception:   # noqa: BLE001 - the gateway does not answer
        stopped = True
    if stopped:
        raise exc
    for java in _java_chain(exc):
        if (_is_instance(spark, java, "java.io.IOException")
                and not _is_instance(spark, java, "java.nio.charset.CharacterCodingException")) or any(
                _is_instance(spark, java, name) for name in _NOT_ABOUT_CONTENT):
            raise exc


_NOT_ABOUT_CONTENT = ("java.lang.OutOfMemoryError", "java.util.concurrent.TimeoutException",
                      "java.lang.InterruptedException")
