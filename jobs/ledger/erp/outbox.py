"""ERP export batches: files in the lake's outbox (S3 in production), recorded once, re-sent on demand.

    <lake>/outbox/erp/tenant=<t>/erp=<erp>/period=<period>/transmission=<n>/<file> + manifest.json

The batch of (tenant, ERP, business date) is created once: a rerun whose journals were all sent
already creates nothing (PostgreSQL ``erp_export_batch`` is unique on (tenant, erp, period)). Sent
journals are frozen in the ledger (a change becomes a restatement journal, ``jobs/ledger/restate.py``),
so journals the first batch did not carry are new ones: they go in a supplement batch ``<date>+<n>``.
Before a batch is recorded its file is parsed back with the layout's reader and every entry checked
(same documents, accounts and amounts, balanced). A re-send copies the recorded file, byte for byte
(its checksum verified), as the next numbered transmission; the manifest names file, checksum, sizes,
totals per currency and who sent it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from jobs import storage
from jobs.ledger.erp import writer
from jobs.ledger.erp.documents import ErpDocument, ErpExportError, build, map_accounts, number
from jobs.settings import ConfigurationError, Settings
from jobs.store.db import connect
from jobs.tenants import TenantConfig

JOURNAL_FIELDS = ["journal_id", "currency", "entry_no", "business_date", "posting_date", "journal_type", "account_key",
                  "account", "psp", "debit_minor", "credit_minor", "memo", "component"]


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


def load_documents(spark, settings: Settings, tenant: str, day: date) -> list[ErpDocument]:
    from pyspark.sql import functions as F

    from jobs import lake

    lines = (lake.read(spark, settings, "journal", tenant).filter(F.col("business_date") == F.lit(day))
             .select(*JOURNAL_FIELDS).orderBy("journal_id", "currency", "entry_no"))
    return build((r.asDict() for r in lines.toLocalIterator()), day)


def verify(content: bytes, docs: list[ErpDocument], erp: str, conf: dict) -> None:
    w = writer(erp)
    as_written = getattr(w, "account_code", str)          # SAP pads numeric G/L accounts (ALPHA conversion)
    parsed = {p["doc_no"]: p for p in w.parse(content, conf)}
    for d in docs:
        p = parsed.pop(d.doc_no, None)
        want = [(as_written(x.account_code), x.debit_minor, x.credit_minor) for x in d.lines]
        if p is None or p["lines"] != want or p["currency"] != d.currency or p["date"] != d.posting_date:
            raise ErpExportError(f"{erp} file does not read back as written for document {d.doc_no} ({d.journal_id})")
        if sum(x[1] for x in p["lines"]) != sum(x[2] for x in p["lines"]):
            raise ErpExportError(f"{erp} document {d.doc_no} does not balance when read back")
    if parsed:
        raise ErpExportError(f"{erp} file holds documents that were not exported: {sorted(parsed)[:5]}")


def exported_journal_ids(settings: Settings, tenant: str, day: date) -> set[str]:
    with connect(settings) as conn:
        rows = conn.execute("SELECT DISTINCT d.journal_id FROM erp_export_document d JOIN erp_export_batch b "
                            "USING (batch_id) WHERE b.tenant_id = %s AND b.business_date = %s", (tenant, day)).fetchall()
    return {r["journal_id"] for r in rows}


def export_period(spark, settings: Settings, cfg: TenantConfig, erp: str, day: date,
                  actor: str = "reconcile_daily") -> BatchResult | None:
    """Export the journals of ``day`` not yet sent to ``erp``; None when there is nothing to send."""
    conf, tenant = erp_conf(cfg, erp), cfg.tenant_id
    docs = load_documents(spark, settings, tenant, day)
    with connect(settings) as conn:
        sent = {(r["journal_id"], r["currency"]) for r in conn.execute(
            "SELECT journal_id, currency FROM erp_export_document WHERE tenant_id = %s AND erp = %s AND journal_id = "
            "ANY(%s)", (tenant, erp, sorted({d.journal_id for d in docs}))).fetchall()}
        batches = conn.execute("SELECT batch_id, period, documents FROM erp_export_batch WHERE tenant_id = %s AND "
                               "erp = %s AND business_date = %s ORDER BY batch_id", (tenant, erp, day)).fetchall()
    unsent = [d for d in docs if d.key not in sent]
    if not unsent:
        return _existing(settings, batches[0]["batch_id"], erp) if batches else None
    label = day.isoformat() if not batches else f"{day.isoformat()}+{len(batches)}"
    numbered = map_accounts(number(unsent, day, 1 + sum(b["documents"] for b in batches)),
                            conf.get("accounts") or {}, tenant, erp)
    w = writer(erp)
    content = w.write(numbered, conf)
    verify(content, numbered, erp, conf)
    name = f"{tenant}_{erp}_{label.replace('+', '_s')}.{w.FILE_SUFFIX}"
    uri = outbox_uri(settings, tenant, erp, label, 1, name)
    sha = hashlib.sha256(content).hexdigest()
    storage.put_bytes(settings, content, uri)
    manifest_uri = _manifest(settings, uri, tenant, erp, label, day, w.LAYOUT, content, numbered, 1, actor, None)
    lines = sum(len(d.lines) for d in numbered)
    with connect(settings) as conn:
        row = conn.execute(
            "INSERT INTO erp_export_batch (tenant_id, erp, period, business_date, layout, file_name, content_sha256, "
            "size_bytes, documents, lines) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, erp, period) DO NOTHING RETURNING batch_id",
            (tenant, erp, label, day, w.LAYOUT, name, sha, len(content), len(numbered), lines)).fetchone()
        if row is None:                      # another run created it meanwhile: theirs stands
            existing = conn.execute("SELECT batch_id FROM erp_export_batch WHERE tenant_id = %s AND erp = %s AND "
                                    "period = %s", (tenant, erp, label)).fetchone()
            return _existing(settings, existing["batch_id"], erp)
        conn.execute("INSERT INTO erp_transmission (batch_id, transmission_no, uri, manifest_uri, sent_by) "
                     "VALUES (%s, 1, %s, %s, %s)", (row["batch_id"], uri, manifest_uri, actor))
        with conn.cursor().copy("COPY erp_export_document (tenant_id, erp, journal_id, currency, batch_id, doc_no) "
                                "FROM STDIN") as copy:
            for d in numbered:
                copy.write_row((tenant, erp, d.journal_id, d.currency, row["batch_id"], d.doc_no))
    return BatchResult(erp, label, row["batch_id"], 1, uri, len(numbered), lines, True)


def resend(settings: Settings, tenant: str, erp: str, period: str, actor: str, reason: str) -> BatchResult:
    """A new numbered transmission of a recorded batch, same bytes."""
    if not actor.strip() or not reason.strip():
        raise ErpExportError("a re-send needs the person who asks for it and a reason")
    with connect(settings) as conn:
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
    manifest_uri = _manifest(settings, uri, tenant, erp, period, batch["business_date"], batch["layout"], content,
                             None, n, actor, reason)
    with connect(settings) as conn:
        conn.execute("INSERT INTO erp_transmission (batch_id, transmission_no, uri, manifest_uri, sent_by, reason) "
                     "VALUES (%s, %s, %s, %s, %s, %s)", (batch["batch_id"], n, uri, manifest_uri, actor, reason))
        conn.execute("INSERT INTO audit_log (tenant_id, actor, action, object_type, object_id, detail) VALUES "
                     "(%s, %s, 'erp_resend', 'erp_export_batch', %s, %s)",
                     (tenant, actor, str(batch["batch_id"]), json.dumps({"transmission": n, "reason": reason})))
    return BatchResult(erp, period, batch["batch_id"], n, uri, batch["documents"], batch["lines"], True)


def list_batches(settings: Settings, tenant: str) -> list[dict]:
    with connect(settings) as conn:
        return conn.execute(
            "SELECT b.batch_id, b.erp, b.period, b.layout, b.documents, b.lines, b.content_sha256, b.created_at, "
            "count(t.*) AS transmissions FROM erp_export_batch b JOIN erp_transmission t USING (batch_id) "
            "WHERE b.tenant_id = %s GROUP BY b.batch_id ORDER BY b.business_date, b.erp, b.batch_id", (tenant,)).fetchall()


def _existing(settings: Settings, batch_id: int, erp: str) -> BatchResult:
    with connect(settings) as conn:
        row = conn.execute("SELECT b.period, b.documents, b.lines, t.transmission_no, t.uri FROM erp_export_batch b "
                           "JOIN erp_transmission t USING (batch_id) WHERE b.batch_id = %s ORDER BY t.transmission_no "
                           "DESC LIMIT 1", (batch_id,)).fetchone()
    return BatchResult(erp, row["period"], batch_id, row["transmission_no"], row["uri"], row["documents"], row["lines"],
                       False)


def _manifest(settings: Settings, uri: str, tenant: str, erp: str, period: str, day: date, layout: str, content: bytes,
              docs: list[ErpDocument] | None, transmission: int, actor: str, reason: str | None) -> str:
    totals: dict[str, dict[str, int]] = {}
    for d in docs or []:
        debit, credit = d.totals()
        t = totals.setdefault(d.currency, {"debit_minor": 0, "credit_minor": 0, "documents": 0})
        t["debit_minor"] += debit
        t["credit_minor"] += credit
        t["documents"] += 1
    manifest = {"tenant": tenant, "erp": erp, "layout": layout, "period": period, "business_date": day.isoformat(),
                "transmission": transmission, "file": {"name": uri.rsplit("/", 1)[-1], "sha256":
                                                       hashlib.sha256(content).hexdigest(), "bytes": len(content)},
                "sent_by": actor, "reason": reason}
    if docs is not None:
        manifest.update(documents=len(docs), lines=sum(len(d.lines) for d in docs), totals=totals,
                        index=[{"doc_no": d.doc_no, "journal_id": d.journal_id, "currency": d.currency} for d in docs])
    manifest_uri = uri.rsplit("/", 1)[0] + "/manifest.json"
    storage.put_bytes(settings, json.dumps(manifest, indent=1, sort_keys=True).encode(), manifest_uri)
    return manifest_uri
