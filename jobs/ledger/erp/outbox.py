"""ERP export batches: files in the lake's outbox (S3 in production), recorded once, re-sent on demand.

    <lake>/outbox/erp/tenant=<t>/erp=<erp>/period=<period>/transmission=<n>/<file> + manifest.json

The batch of (tenant, ERP, business date) is created once: a rerun whose journals were all sent
already creates nothing (PostgreSQL ``erp_export_batch`` is unique on (tenant, erp, period)). Sent
journals are frozen in the ledger (a change becomes a restatement journal, ``jobs/ledger/restate.py``),
so journals the first batch did not carry are new ones: they go in a supplement batch ``<date>+<n>``.

The file is rendered by Spark (one record per document line, written sorted, then the parts joined
behind the layout's header), so a day of millions of journal lines never sits in the driver. Before
a batch is recorded every record is read back (Spark's CSV parser for the CSV layouts, the fields
split for SAP) and compared with the line it came from (document, date, currency, account,
amounts), the documents are checked balanced, and the joined file must hold exactly the records
rendered. The documents of a batch (journal, currency, document number) are in PostgreSQL
``erp_export_document``. A re-send copies the recorded file, byte for byte (its checksum verified),
as the next numbered transmission; the manifest names file, checksum, sizes, totals per currency and
who sent it.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from jobs import audit, lake, storage
from jobs.ledger.erp import documents, writer
from jobs.ledger.erp.documents import ErpExportError
from jobs.settings import ConfigurationError, Settings
from jobs.store.db import connect
from jobs.tenants import TenantConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    erp: str
    period: str
    batch_id: int
    transmission_no: int
    uri: str
    documents: int
    lines: int
    created: bool


def erp_conf(cfg: TenantConfig, erp: str) -> dict:
    conf = (cfg.raw.get("erp") or {}).get(erp)
    if not isinstance(conf, dict):
        raise ConfigurationError(f"tenant {cfg.tenant_id}: no erp.{erp} configuration (account mapping and options)")
    return conf


def targets(cfg: TenantConfig) -> list[str]:
    return list((cfg.raw.get("erp") or {}).get("targets") or [])


def outbox_uri(settings: Settings, tenant: str, erp: str, period: str, transmission: int, name: str) -> str:
    return storage.join(settings.lake, "outbox", "erp", f"tenant={tenant}", f"erp={erp}", f"period={period}",
                        f"transmission={transmission}", name)


class DayJournals:
    """The journals of a business date for the ERP export, read once for all of a tenant's ERPs and
    only as far as needed: a rerun whose documents were all sent counts them and stops there."""

    def __init__(self, spark, settings: Settings, tenant: str, day: date):
        self.spark, self.settings, self.tenant, self.day = spark, settings, tenant, day

    def _journal(self):
        return lake.read(self.spark, self.settings, "journal", self.tenant, since=self.day, until=self.day)

    @cached_property
    def documents(self) -> int:
        return self._journal().select(*documents.DOC_KEY).distinct().count()

    @cached_property
    def lines(self):
        """The document lines (``documents.day_lines``), checked balanced."""
        lines = lake.materialize(documents.day_lines(self._journal(), self.day))
        documents.check_balanced(lines, self.day)
        return lines


_EXPORTED = ("SELECT DISTINCT d.journal_id, d.currency::text FROM erp_export_document d JOIN erp_export_batch b "
             "USING (batch_id) WHERE b.tenant_id = %s AND b.business_date = %s")


def exported_documents(spark, settings: Settings, tenant: str, day: date, erp: str | None = None):
    """The (journal_id, currency) documents of ``day`` already in a batch (to ``erp``, or to any ERP),
    as a DataFrame (COPY'd out as CSV and read by Arrow); None when there are none."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    sql, params = _EXPORTED, [tenant, day]
    if erp is not None:
        sql, params = sql + " AND b.erp = %s", params + [erp]
    data = io.BytesIO()
    with connect(settings, tenant) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
            for block in copy:
                data.write(block)
    if not data.tell():
        return None
    data.seek(0)
    table = pcsv.read_csv(data, read_options=pcsv.ReadOptions(column_names=["journal_id", "currency"]),
                          convert_options=pcsv.ConvertOptions(column_types={"journal_id": pa.string(),
                                                                            "currency": pa.string()}))
    return _frame(spark, table)


def _frame(spark, table):
    """A Spark DataFrame of an Arrow table (through Arrow, not one Python object per row)."""
    from jobs.spark import arrow_frame

    return arrow_frame(spark, table.to_pandas())


def export_period(spark, settings: Settings, cfg: TenantConfig, erp: str, day: date,
                  actor: str = "reconcile_daily", journals: DayJournals | None = None) -> BatchResult | None:
    """Export the journals of ``day`` not yet sent to ``erp``; None when there is nothing to send.
    ``journals``: the day's journals, shared by the ERPs of one run."""
    from pyspark.sql import functions as F

    from jobs.store.arrow_copy import arrow_batches, copy_through_stage

    started = time.monotonic()
    conf, tenant, w = erp_conf(cfg, erp), cfg.tenant_id, writer(erp)
    journals = journals or DayJournals(spark, settings, tenant, day)
    with connect(settings, cfg.tenant_id) as conn:
        batches = conn.execute("SELECT batch_id, period, documents FROM erp_export_batch WHERE tenant_id = %s AND "
                               "erp = %s AND business_date = %s ORDER BY batch_id", (tenant, erp, day)).fetchall()
    sent_count = sum(b["documents"] for b in batches)
    # sent journals are frozen: when every document was sent there is nothing to do (a first export has no
    # batch and does not count the day's documents: that is one more pass over the day's journal lines)
    if batches and sent_count >= journals.documents:
        return _existing(settings, cfg.tenant_id, batches[0]["batch_id"], erp)
    lines = journals.lines
    sent = exported_documents(spark, settings, tenant, day, erp) if sent_count else None
    unsent = lines if sent is None else lake.materialize(lines.join(sent, documents.DOC_KEY, "left_anti"))
    if unsent.isEmpty():
        return _existing(settings, cfg.tenant_id, batches[0]["batch_id"], erp) if batches else None
    label = day.isoformat() if not batches else f"{day.isoformat()}+{len(batches)}"
    if batches:                               # a supplement numbers on from the documents already sent
        unsent = lake.materialize(documents.number(unsent, day, 1 + sent_count))
    mapped = documents.map_accounts(unsent, conf.get("accounts") or {}, tenant, erp)
    problem = documents.first_problem(mapped, w.problems(mapped, conf))
    if problem:
        raise ErpExportError(problem)
    per_currency = unsent.groupBy("currency").agg(
        F.sum("debit_minor").alias("debit"), F.sum("credit_minor").alias("credit"),
        F.count(F.when(F.col("line_no") == 1, 1)).alias("documents"), F.count(F.lit(1)).alias("lines"),
        F.min("doc_seq").alias("first"), F.max("doc_seq").alias("last")).collect()
    stats = {"documents": sum(r["documents"] for r in per_currency), "lines": sum(r["lines"] for r in per_currency)}
    seqs = (min(r["first"] for r in per_currency), max(r["last"] for r in per_currency))
    name = f"{tenant}_{erp}_{label.replace('+', '_s')}.{w.FILE_SUFFIX}"
    uri = outbox_uri(settings, tenant, erp, label, 1, name)
    sha, size = _write_file(spark, settings, erp, w.records(mapped, conf), w.check(conf), seqs, w.header(conf),
                            w.LINE_SEPARATOR, w.record_count(stats["documents"], stats["lines"]), uri)
    totals = {r["currency"]: {"debit_minor": r["debit"], "credit_minor": r["credit"], "documents": r["documents"]}
              for r in per_currency}
    manifest_uri = _manifest(settings, uri, tenant, erp, label, day, w.LAYOUT, sha, size, 1, actor, None,
                             {**stats, "totals": totals})
    index = arrow_batches(unsent.filter(F.col("line_no") == 1).select(
        F.lit(tenant).alias("tenant_id"), F.lit(erp).alias("erp"), "journal_id", "currency", "doc_no"))
    with connect(settings, cfg.tenant_id) as conn:
        row = conn.execute(
            "INSERT INTO erp_export_batch (tenant_id, erp, period, business_date, layout, file_name, content_sha256, "
            "size_bytes, documents, lines) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, erp, period) DO NOTHING RETURNING batch_id",
            (tenant, erp, label, day, w.LAYOUT, name, sha, size, stats["documents"], stats["lines"])).fetchone()
        if row is None:                      # another run created it meanwhile: theirs stands
            existing = conn.execute("SELECT batch_id FROM erp_export_batch WHERE tenant_id = %s AND erp = %s AND "
                                    "period = %s", (tenant, erp, label)).fetchone()
            return _existing(settings, cfg.tenant_id, existing["batch_id"], erp)
        conn.execute("INSERT INTO erp_transmission (tenant_id, batch_id, transmission_no, uri, manifest_uri, sent_by) "
                     "VALUES (%s, %s, 1, %s, %s, %s)", (tenant, row["batch_id"], uri, manifest_uri, actor))
        batch_id = row["batch_id"]
        copy_through_stage(conn, "erp_export_document",
                           ["tenant_id", "erp", "journal_id", "currency", "batch_id", "doc_no"],
                           (b.append_column("batch_id", _constant(batch_id, b.num_rows)) for b in index))
    log.info("%s %s %s: %d documents, %d lines, %d bytes in %.1f s", tenant, erp, label, stats["documents"],
             stats["lines"], size, time.monotonic() - started)
    return BatchResult(erp, label, batch_id, 1, uri, stats["documents"], stats["lines"], True)


def _constant(value: int, n: int):
    import pyarrow as pa

    return pa.array([value] * n, pa.int64())


def _write_file(spark, settings: Settings, erp: str, records, check, seqs: tuple[int, int], header: str | None,
                separator: str, expected: int, uri: str) -> tuple[str, int]:
    """Write the records to ``uri`` in one Spark pass: each record is checked (``check``) and goes, by
    its document number, to one of a few contiguous ranges of documents; each range is sorted and
    written as one text part under ``ok=<check>/bucket=<n>`` in the lake's scratch area (sorted by the
    partition columns first, so the writer keeps this order instead of sorting again). A record that
    does not read back fails the export (naming it); otherwise the parts are joined in range order
    behind the header into ``uri``, counting the records. Returns (sha256, bytes)."""
    from pyspark.sql import functions as F

    scratch = storage.join(settings.lake, "_scratch", "erp", uuid.uuid4().hex)
    buckets = int(spark.conf.get("spark.sql.shuffle.partitions"))
    first, span = seqs[0], seqs[1] - seqs[0] + 1
    bucket = F.floor((F.col("doc_seq") - F.lit(first)) * F.lit(buckets) / F.lit(span)).cast("int")
    (records.select("doc_seq", "part", "line_no", "text", F.coalesce(check, F.lit(False)).alias("ok"),
                    bucket.alias("bucket"))
     .repartition(buckets, "bucket").sortWithinPartitions("ok", "bucket", "doc_seq", "part", "line_no")
     .select("text", "ok", "bucket")
     .write.partitionBy("ok", "bucket").option("lineSep", separator).text(storage.spark_uri(scratch)))
    digest, size, count, sep = hashlib.sha256(), 0, 0, separator.encode()
    try:
        parts = [p for p in storage.list_files(settings, scratch) if p.rsplit("/", 1)[-1].startswith("part-")]
        bad = [p for p in parts if "/ok=false/" in p]
        if bad:
            record = storage.read_head(settings, bad[0], 300).split(sep, 1)[0].decode(errors="replace")
            raise ErpExportError(f"{erp} file does not read back as written: record {record!r}")
        parts.sort(key=lambda p: (int(p.split("/bucket=", 1)[1].split("/", 1)[0]), p))

        def join(out) -> None:
            nonlocal count

            def emit(chunk: bytes) -> None:
                nonlocal size
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)

            if header is not None:
                emit(header.encode() + sep)
            tail = b""                        # a separator may straddle two chunks
            for part in parts:
                with storage.open_read(settings, part) as fh:
                    while chunk := fh.read(1 << 20):
                        count += (tail + chunk).count(sep)
                        tail = chunk[1 - len(sep):] if len(sep) > 1 else b""
                        emit(chunk)
            if count != expected:             # raised inside the write: the file never appears
                raise ErpExportError(f"{uri}: the joined file holds {count} records, {expected} were rendered")

        storage.put_stream(settings, uri, join)
    finally:
        _remove_tree(settings, scratch)
    return digest.hexdigest(), size


def _remove_tree(settings: Settings, uri: str) -> None:
    if uri.startswith(("s3://", "s3a://")):
        for key in list(storage.list_files(settings, uri)):
            storage.delete(settings, key)
        return
    shutil.rmtree(uri, ignore_errors=True)


def resend(settings: Settings, tenant: str, erp: str, period: str, actor: str, reason: str) -> BatchResult:
    """A new numbered transmission of a recorded batch, same bytes."""
    if not actor.strip() or not reason.strip():
        raise ErpExportError("a re-send needs the person who asks for it and a reason")
    with connect(settings, tenant) as conn:
        batch = conn.execute("SELECT * FROM erp_export_batch WHERE tenant_id = %s AND erp = %s AND period = %s",
                             (tenant, erp, period)).fetchone()
        if batch is None:
            raise ErpExportError(f"tenant {tenant}: no {erp} batch for period {period}")
        first = conn.execute("SELECT uri, max(transmission_no) OVER () AS last FROM erp_transmission WHERE batch_id = %s "
                             "ORDER BY transmission_no LIMIT 1", (batch["batch_id"],)).fetchone()
    content = storage.read_bytes(settings, first["uri"])
    if hashlib.sha256(content).hexdigest() != batch["content_sha256"].strip():
        raise ErpExportError(f"{first['uri']} no longer has the checksum recorded for batch {batch['batch_id']}")
    n = first["last"] + 1
    uri = outbox_uri(settings, tenant, erp, period, n, batch["file_name"])
    storage.put_bytes(settings, content, uri)
    manifest_uri = _manifest(settings, uri, tenant, erp, period, batch["business_date"], batch["layout"],
                             batch["content_sha256"].strip(), len(content), n, actor, reason, None)
    with connect(settings, tenant) as conn:
        conn.execute("INSERT INTO erp_transmission (tenant_id, batch_id, transmission_no, uri, manifest_uri, sent_by, "
                     "reason) VALUES (%s, %s, %s, %s, %s, %s, %s)", (tenant, batch["batch_id"], n, uri, manifest_uri, actor,
                                                                     reason))
        audit.append(conn, tenant, actor, "erp_resend", "erp_export_batch", str(batch["batch_id"]),
                     {"transmission": n, "reason": reason})
    return BatchResult(erp, period, batch["batch_id"], n, uri, batch["documents"], batch["lines"], True)


def list_batches(settings: Settings, tenant: str) -> list[dict]:
    with connect(settings, tenant) as conn:
        return conn.execute(
            "SELECT b.batch_id, b.erp, b.period, b.layout, b.documents, b.lines, b.content_sha256, b.created_at, "
            "count(t.*) AS transmissions FROM erp_export_batch b JOIN erp_transmission t USING (batch_id) "
            "WHERE b.tenant_id = %s GROUP BY b.batch_id ORDER BY b.business_date, b.erp, b.batch_id", (tenant,)).fetchall()


def _existing(settings: Settings, tenant: str, batch_id: int, erp: str) -> BatchResult:
    with connect(settings, tenant) as conn:
        row = conn.execute("SELECT b.period, b.documents, b.lines, t.transmission_no, t.uri FROM erp_export_batch b "
                           "JOIN erp_transmission t USING (batch_id) WHERE b.batch_id = %s ORDER BY t.transmission_no "
                           "DESC LIMIT 1", (batch_id,)).fetchone()
    return BatchResult(erp, row["period"], batch_id, row["transmission_no"], row["uri"], row["documents"], row["lines"],
                       False)


def _manifest(settings: Settings, uri: str, tenant: str, erp: str, period: str, day: date, layout: str, sha: str,
              size: int, transmission: int, actor: str, reason: str | None, content: dict | None) -> str:
    """``content``: documents, lines and totals per currency (a first transmission)."""
    manifest = {"tenant": tenant, "erp": erp, "layout": layout, "period": period, "business_date": day.isoformat(),
                "transmission": transmission, "file": {"name": uri.rsplit("/", 1)[-1], "sha256": sha, "bytes": size},
                "sent_by": actor, "reason": reason, **(content or {})}
    manifest_uri = uri.rsplit("/", 1)[0] + "/manifest.json"
    storage.put_bytes(settings, json.dumps(manifest, indent=1, sort_keys=True).encode(), manifest_uri)
    return manifest_uri
