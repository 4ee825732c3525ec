"""Parse and normalise the files landed for a tenant and business date into the canonical tables.

Writes (replacing the (tenant, date) partition): ``silver/events`` (good rows), ``bronze/quarantine``
(bad rows with reason, and whole files refused), ``bronze/file_stats`` (rows read / loaded /
quarantined and control totals per file). Returns the per-file summary for the manifest.
"""
from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from functools import reduce

from pyspark.sql import DataFrame, SparkSession

from jobs import lake
from jobs.formats import common as c
from jobs.formats.registry import UNKNOWN_FORMAT, by_id
from jobs.landing import LandedFile
from jobs.schema import FILE_STATS_SCHEMA, QUARANTINE_SCHEMA
from jobs.settings import Settings

log = logging.getLogger(__name__)


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


def _parser(format_id: str):
    module, func = by_id(format_id).parser.split(":")
    return getattr(importlib.import_module(module), func)


def _union(frames: list[DataFrame]) -> DataFrame:
    return reduce(lambda a, b: a.unionByName(b), frames)


def parse_files(spark: SparkSession, settings: Settings, tenant_id: str, ingest_date: date,
                files: list[LandedFile], pii_salt: str) -> list[FileSummary]:
    ctx = c.ParseContext(tenant_id, ingest_date, pii_salt)
    by_format: dict[str, list[LandedFile]] = defaultdict(list)
    for f in files:
        by_format[f.format].append(f)
    events, quarantine, stats = [c.empty_output(spark).events], [], []
    rejected: dict[str, tuple[LandedFile, str, str]] = {}
    notes: dict[str, str] = {}
    for format_id, group in sorted(by_format.items()):
        if format_id == UNKNOWN_FORMAT:
            for f in group:
                rejected[f.sha256] = (f, c.UNKNOWN_FORMAT, "no parser recognises this file's content")
            continue
        spec = by_id(format_id)
        log.info("parsing %d %s file(s) for %s %s", len(group), format_id, tenant_id, ingest_date)
        out = _parser(format_id)(spark, settings, spec, group, ctx)
        events.append(out.events)
        quarantine.append(out.quarantine)
        stats.append(out.stats)
        names = {f.sha256: f for f in group}
        rejected.update({sha: (names[sha], reason, detail) for sha, (reason, detail) in out.rejected.items()})
        notes.update(out.notes)
    whole_file_rows = [
        {"tenant_id": tenant_id, "ingest_date": ingest_date, "file_sha256": f.sha256, "file_name": f.file_name,
         "record_ordinal": None, "reason_code": reason, "reason_detail": detail, "raw": None}
        for f, reason, detail in rejected.values()
    ]
    quarantine.append(spark.createDataFrame(whole_file_rows, QUARANTINE_SCHEMA))
    stats_rows = _collect_stats(stats, spark)
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
    lake.replace_partition(spark, settings, "events", _union(events), tenant_id, ingest_date)
    lake.replace_partition(spark, settings, "quarantine", _union(quarantine), tenant_id, ingest_date)
    lake.replace_partition(spark, settings, "file_stats",
                           spark.createDataFrame(list(stats_rows.values()), FILE_STATS_SCHEMA), tenant_id, ingest_date)
    spark.catalog.clearCache()
    by_sha = {f.sha256: f for f in files}
    return [FileSummary(sha, r["file_name"], r["format"], r["parser_version"], r["records_read"], r["records_loaded"],
                        r["records_quarantined"], r["control_totals_ok"], r["detail"])
            for sha, r in sorted(stats_rows.items(), key=lambda kv: by_sha[kv[0]].file_name)]


def _collect_stats(stats: list[DataFrame], spark: SparkSession) -> dict[str, dict]:
    if not stats:
        return {}
    return {r["file_sha256"]: r.asDict() for r in _union(stats).collect()}
