"""``recon export``: the product's documented CSV views of the results (see README, "Exports").

matches     match_id,relation,level,rule_id,file_name,record_ordinal   one row per member of each active match
exceptions  file_name,record_ordinal,reason_code                       open exceptions after the latest run
            (matching, UNEXPECTED_FEE from the fee checks, DISPUTE_TRANSITION from the dispute lifecycle)
files       file_name,sha256,format,parser_version,records_read,records_loaded,records_quarantined,control_totals_ok
quarantine  file_name,record_ordinal,reason_code,raw
journals    journal_id,entry_no,business_date,account,debit_minor,credit_minor,currency,match_id,
            source_file_name,source_record_ordinal
"""
from __future__ import annotations

import csv
from pathlib import Path

from jobs.settings import Settings

COLUMNS = {
    "matches": ["match_id", "relation", "level", "rule_id", "file_name", "record_ordinal"],
    "exceptions": ["file_name", "record_ordinal", "reason_code"],
    "files": ["file_name", "sha256", "format", "parser_version", "records_read", "records_loaded",
              "records_quarantined", "control_totals_ok"],
    "quarantine": ["file_name", "record_ordinal", "reason_code", "raw"],
    "journals": ["journal_id", "entry_no", "business_date", "account", "debit_minor", "credit_minor", "currency",
                 "match_id", "source_file_name", "source_record_ordinal"],
}


def _write(out: Path, header: list[str], rows) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in row])
            n += 1
    return n


def export(settings: Settings, tenant_id: str, what: str, out: Path) -> int:
    if what not in COLUMNS:
        raise ValueError(f"unknown export {what!r}; choose one of {', '.join(COLUMNS)}")
    if what == "files":
        from jobs.store.db import connect

        with connect(settings, tenant_id) as conn:
            rows = conn.execute(
                f"SELECT {', '.join(COLUMNS['files'])} FROM raw_file WHERE tenant_id = %s "
                "ORDER BY received_date, file_name, sha256", (tenant_id,)).fetchall()
        return _write(out, COLUMNS["files"], ([r[c] for c in COLUMNS["files"]] for r in rows))
    from pyspark.sql import functions as F

    from jobs import lake
    from jobs.spark import get_spark, local_frame

    spark = get_spark(settings, app_name=f"recon-export-{what}")
    cols = COLUMNS[what]
    if what == "matches":
        from jobs.match.manual import active_matches

        df = active_matches(spark, settings, tenant_id).select(*cols).orderBy("match_id", "file_name", "record_ordinal")
    elif what == "exceptions":
        from jobs.ledger.exceptions import dispute_exception_records, fee_exceptions

        status = lake.read(spark, settings, "item_status", tenant_id)
        latest = status.agg(F.max("run_date")).first()[0]
        df = (status.filter((F.col("run_date") == F.lit(latest)) & (F.col("status") == "EXCEPTION")).select(*cols)
              .unionByName(fee_exceptions(spark, settings, tenant_id, latest).select(*cols)))
        disputes = dispute_exception_records(settings, tenant_id) if settings.has_database else []
        if disputes:
            df = df.unionByName(local_frame(spark, disputes, "file_name string, record_ordinal int, reason_code string"))
        df = df.distinct().orderBy(*cols)
    elif what == "quarantine":
        df = lake.read(spark, settings, "quarantine", tenant_id).select(*cols).orderBy("file_name", "record_ordinal")
    else:
        df = lake.read(spark, settings, "journal", tenant_id).select(*cols).orderBy("business_date", "journal_id",
                                                                                    "entry_no")
    return _write(out, cols, (tuple(r) for r in df.toLocalIterator()))
