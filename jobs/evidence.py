"""Evidence packs: how a tenant's period was reconciled, in one signed archive an auditor can check on their own.

``recon evidence --tenant T --period 2026-11`` (and ``recon period close``) writes
``<lake>/evidence/tenant=T/period=P/evidence-T-P-<n>.zip`` (n: the period's pack number; a pack is never replaced),
holding:

| file                   | what                                                                                   |
|------------------------|----------------------------------------------------------------------------------------|
| runs.csv               | the period's runs: status, times, summary                                               |
| matches.csv            | every match member the period's runs made, with rule, level, score, evidence; ``active`` false for groups people revoked later |
| exceptions.csv         | the exceptions open at some time in the period, with their workflow state               |
| exception_history.csv  | those exceptions' history (their audit-trail rows: assignments, notes, status, write-offs), to the pack |
| journals.csv           | the period's journal lines                                                              |
| trial_balance.csv      | debits, credits and balance per account and currency, from those lines                  |
| approvals.csv          | the corrections (four eyes) proposed or decided from the period's start on              |
| audit_trail.csv        | the tenant's audit-trail rows from the period's start to the pack, with sequence numbers and hashes |
| files.csv              | the files received in the period: SHA-256, size, source, format, records                |
| config_versions.json   | every configuration version recorded when the pack is built (the runs used one of them) |
| manifest.json          | tenant, period, each file's SHA-256, bytes and rows; the audit chain's verification and head when built; the signing key |
| manifest.sig           | the Ed25519 signature of manifest.json (base64)                                         |

The pack is built only when the audit trail's whole hash chain verifies. The signing key is the
tenant's Ed25519 key (``RECON_EVIDENCE_KEY_SECRET_PREFIX``: a Secrets Manager secret per tenant; in ``local`` mode a
key created once under ``RECON_SECRETS_DIR``); its public key is registered in PostgreSQL (``evidence_key``).
``recon evidence verify PACK`` checks the signature against a registered key (or ``--public-key``), every file
against the manifest, and the audit-trail rows' hashes and links.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from jobs import audit, storage
from jobs.settings import ConfigurationError, Settings

FORMAT = "psp-recon evidence pack 1"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"


class EvidenceError(ValueError):
    """A pack that cannot be built or does not verify; the message says why (one line)."""


# --- the signing key ------------------------------------------------------------------------------------------

def _private_key(settings: Settings, tenant_id: str):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if settings.evidence_key_secret_prefix:
        from jobs.secrets import secret_string

        raw = base64.b64decode(secret_string(settings.evidence_key_secret_prefix + tenant_id, settings.aws_endpoint_url))
    elif settings.spark_mode != "local":
        raise ConfigurationError(f"no evidence signing key for tenant {tenant_id!r}: set RECON_EVIDENCE_KEY_SECRET_PREFIX "
                                 f"(the key is the Secrets Manager secret <prefix>{tenant_id}); a key is created only "
                                 "in local mode")
    else:
        path = settings.secrets_dir / f"{tenant_id}.evidence_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(base64.b64encode(os.urandom(32)).decode())
            path.chmod(0o600)
        raw = base64.b64decode(path.read_text().strip())
    if len(raw) != 32:
        raise ConfigurationError(f"the evidence signing key of tenant {tenant_id!r} is not a raw Ed25519 key (32 bytes)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _public_raw(key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()


# --- building -------------------------------------------------------------------------------------------------

@dataclass
class Pack:
    tenant_id: str
    period: str
    pack_no: int
    uri: str
    archive_sha256: str
    manifest: dict[str, Any]


def _csv(header: list[str], rows: Iterable[Iterable[Any]]) -> tuple[bytes, int]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow(["" if v is None else _text(v) for v in row])
        n += 1
    return out.getvalue().encode("utf-8"), n


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat()
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def _rows(conn, query: str, params: dict) -> tuple[list[str], list[tuple]]:
    cur = conn.execute(query, params)
    names = [d.name for d in cur.description]
    return names, [tuple(r[n] for n in names) for r in cur.fetchall()]


def _database_files(conn, tenant_id: str, start: date, end: date) -> tuple[dict[str, tuple[bytes, int]], dict]:
    p = {"t": tenant_id, "start": start, "end": end}
    files: dict[str, tuple[bytes, int]] = {}
    files["runs.csv"] = _csv(*_rows(conn, "SELECT business_date, run_id, status, started_at, finished_at, summary "
                                          "FROM recon_run WHERE tenant_id = %(t)s AND business_date BETWEEN %(start)s "
                                          "AND %(end)s ORDER BY business_date", p))
    names, exceptions = _rows(conn, "SELECT relation, event_id, reason_code, reason_detail, source, event_type, "
                                    "amount_minor, currency, file_name, record_ordinal, first_seen_date, last_seen_date, "
                                    "is_open, workflow_status, assignee, note FROM exception_item WHERE tenant_id = "
                                    "%(t)s AND first_seen_date <= %(end)s AND (is_open OR last_seen_date >= %(start)s) "
                                    "ORDER BY first_seen_date, file_name, record_ordinal, relation", p)
    files["exceptions.csv"] = _csv(names, exceptions)
    keys = sorted({f"{r[0]}:{r[1]}" for r in exceptions})
    files["exception_history.csv"] = _csv(*_rows(
        conn, "SELECT object_id AS exception, seq, at, actor, action, detail::text AS detail FROM audit_log "
              "WHERE tenant_id = %(t)s AND object_type = 'exception' AND object_id = ANY(%(keys)s) "
              "ORDER BY object_id, seq", {**p, "keys": keys}))
    files["approvals.csv"] = _csv(*_rows(
        conn, "SELECT correction_id, kind, subject, detail, amount_minor, currency, reason, proposed_by, proposed_at, "
              "status, decided_by, decided_at, decision_reason FROM correction WHERE tenant_id = %(t)s AND "
              "(proposed_at >= %(start)s OR decided_at >= %(start)s) ORDER BY correction_id", p))
    files["files.csv"] = _csv(*_rows(
        conn, "SELECT received_date, file_name, sha256, size_bytes, source, format, parser_version, connector, "
              "remote_path, received_at, records_read, records_loaded, records_quarantined, control_totals_ok, raw_uri "
              "FROM raw_file WHERE tenant_id = %(t)s AND received_date BETWEEN %(start)s AND %(end)s "
              "ORDER BY received_date, file_name, sha256", p))
    # every version recorded until now: a run of the period (or its rerun) used one of them; its matches carry the
    # rule version, its journals the chart version
    versions = conn.execute("SELECT config_version, config_sha256, recorded_at, config FROM tenant_config_version "
                            "WHERE tenant_id = %(t)s ORDER BY config_version", p).fetchall()
    body = json.dumps([{**r, "recorded_at": _text(r["recorded_at"])} for r in versions], indent=1, sort_keys=True)
    files["config_versions.json"] = (body.encode("utf-8"), len(versions))

    # the audit trail: the whole chain verified, the rows from the first one written in the period to its head (the
    # period's own work and what was done about it afterwards: its close, the exceptions worked after month end) in
    # the pack, a contiguous piece of the chain that links to the row before it
    chain = conn.execute("SELECT audit_id, tenant_id, seq, actor, action, object_type, object_id, detail::text AS "
                         "detail_text, at, prev_hash, record_hash FROM audit_log WHERE tenant_id = %(t)s ORDER BY seq",
                         p).fetchall()
    verification = audit.verify_rows(tenant_id, chain)
    if not verification.ok:
        raise EvidenceError(f"no evidence pack for {tenant_id} {start}..{end}: {verification.describe()}")
    first = next((i for i, r in enumerate(chain) if r["at"].astimezone(timezone.utc).date() >= start), len(chain))
    in_period = chain[first:]
    files["audit_trail.csv"] = _csv(AUDIT_COLUMNS, ([r[c] for c in AUDIT_COLUMNS] for r in in_period))
    chain_info = {"records": verification.records, "head_seq": verification.head_seq,
                  "head_hash": verification.head_hash, "intact": True,
                  "first_seq_in_pack": in_period[0]["seq"] if in_period else None,
                  "previous_hash": in_period[0]["prev_hash"] if in_period else None}
    return files, chain_info


AUDIT_COLUMNS = ["seq", "audit_id", "tenant_id", "actor", "action", "object_type", "object_id", "detail_text", "at",
                 "prev_hash", "record_hash"]


def _lake_files(spark, settings: Settings, tenant_id: str, start: date, end: date) -> dict[str, tuple[bytes, int]]:
    from pyspark.sql import functions as F

    from jobs import lake
    from jobs.match.manual import active_matches

    made = lake.read(spark, settings, "matches", tenant_id, since=start, until=end)
    active = (active_matches(spark, settings, tenant_id, since=start, until=end).select("match_id").distinct()
              .withColumn("active", F.lit(True)))
    match_cols = ["run_date", "match_id", "relation", "level", "rule_id", "rule_version", "score", "role", "event_id",
                  "file_name", "record_ordinal", "evidence", "run_id"]
    matches = (made.join(active, "match_id", "left")
               .select(*match_cols, F.coalesce("active", F.lit(False)).alias("active"))
               .orderBy("run_date", "match_id", "role", "event_id"))
    journal = lake.read(spark, settings, "journal", tenant_id, since=start, until=end)
    journal_cols = [c for c in journal.columns if c not in ("tenant_id", "source_event_ids")]
    lines = journal.select(*journal_cols, F.array_join("source_event_ids", ";").alias("source_event_ids")) \
                   .orderBy("business_date", "journal_id", "entry_no")
    trial = (journal.groupBy("account", "currency")
             .agg(F.sum("debit_minor").alias("debit_minor"), F.sum("credit_minor").alias("credit_minor"))
             .withColumn("balance_minor", F.col("debit_minor") - F.col("credit_minor")).orderBy("account", "currency"))
    return {name: _csv(df.columns, (tuple(r) for r in df.toLocalIterator()))
            for name, df in (("matches.csv", matches), ("journals.csv", lines), ("trial_balance.csv", trial))}


def _zip(members: dict[str, bytes], stamp: date) -> bytes:
    """The archive, byte for byte the same for the same members (fixed order and times)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(stamp.year, stamp.month, stamp.day, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name])
    return out.getvalue()


def build(settings: Settings, tenant_id: str, period: str, actor: str, spark=None, out: Path | None = None) -> Pack:
    """Build, sign, store and record the evidence pack of ``tenant_id``'s ``period`` (YYYY-MM or YYYY-MM-DD)."""
    from jobs.ledger.periods import Period, PeriodError
    from jobs.store.db import connect

    try:
        p = Period.parse(period)
    except PeriodError as exc:
        raise EvidenceError(str(exc)) from None
    if spark is None:
        from jobs.spark import get_spark

        spark = get_spark(settings, app_name=f"recon-evidence-{tenant_id}")
    key = _private_key(settings, tenant_id)
    public = _public_raw(key)
    with connect(settings, tenant_id) as conn:
        if conn.execute("SELECT 1 FROM tenant WHERE tenant_id = %s", (tenant_id,)).fetchone() is None:
            raise EvidenceError(f"tenant {tenant_id!r} has no recorded runs or configuration")
        files, chain = _database_files(conn, tenant_id, p.start, p.end)
    files.update(_lake_files(spark, settings, tenant_id, p.start, p.end))
    manifest = {
        "format": FORMAT, "tenant_id": tenant_id, "period": p.label, "period_start": p.start.isoformat(),
        "period_end": p.end.isoformat(), "generated_at": datetime.now(timezone.utc).isoformat(), "generated_by": actor,
        "files": {name: {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body), "rows": rows}
                  for name, (body, rows) in sorted(files.items())},
        "audit_chain": chain,
        "signing_key": {"algorithm": "Ed25519", "public_key": base64.b64encode(public).decode(),
                        "fingerprint": fingerprint(public)},
    }
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    signature = base64.b64encode(key.sign(manifest_bytes))
    archive = _zip({**{n: b for n, (b, _) in files.items()}, MANIFEST: manifest_bytes, SIGNATURE: signature}, p.end)
    digest = hashlib.sha256(archive).hexdigest()
    with connect(settings, tenant_id) as conn:
        conn.execute("INSERT INTO evidence_key (tenant_id, fingerprint, public_key) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (tenant_id, fingerprint(public), base64.b64encode(public).decode()))
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"evidence:{tenant_id}:{p.label}",))
        pack_no = conn.execute("SELECT coalesce(max(pack_no), 0) + 1 AS n FROM evidence_pack WHERE tenant_id = %s "
                               "AND period = %s", (tenant_id, p.label)).fetchone()["n"]
        uri = storage.join(settings.lake, "evidence", f"tenant={tenant_id}", f"period={p.label}",
                           f"evidence-{tenant_id}-{p.label}-{pack_no}.zip")
        storage.put_bytes(settings, archive, uri)
        conn.execute("INSERT INTO evidence_pack (tenant_id, period, pack_no, uri, archive_sha256, manifest_sha256, "
                     "key_fingerprint, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                     (tenant_id, p.label, pack_no, uri, digest, hashlib.sha256(manifest_bytes).hexdigest(),
                      fingerprint(public), actor))
        audit.append(conn, tenant_id, actor, "evidence_pack", "evidence_pack", f"{p.label}#{pack_no}",
                     {"uri": uri, "archive_sha256": digest, "audit_head_seq": chain["head_seq"],
                      "audit_head_hash": chain["head_hash"]})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(archive)
    return Pack(tenant_id, p.label, pack_no, uri, digest, manifest)


# --- verifying ------------------------------------------------------------------------------------------------

@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        m = self.manifest or {}
        what = f"evidence pack of {m.get('tenant_id', '?')} {m.get('period', '?')}"
        if self.ok:
            chain = m["audit_chain"]
            return (f"{what}: signature valid (key {m['signing_key']['fingerprint'][:16]}...), "
                    f"{len(m['files'])} files as listed, audit trail rows intact (chain head seq {chain['head_seq']} "
                    f"hash {chain['head_hash']})")
        return f"{what}: NOT VALID: " + "; ".join(self.problems)


def verify(archive: bytes, trusted_keys: list[str]) -> Verdict:
    """Check a pack against ``trusted_keys`` (base64 raw Ed25519 public keys): the manifest's signature, each
    file against the manifest (nothing missing, nothing extra) and the audit-trail rows' hashes and links."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    verdict = Verdict()
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
        members = {name: zf.read(name) for name in zf.namelist()}
    except (zipfile.BadZipFile, ValueError) as exc:
        verdict.problems.append(f"not a readable archive ({exc})")
        return verdict
    if MANIFEST not in members or SIGNATURE not in members:
        verdict.problems.append(f"{MANIFEST} or {SIGNATURE} missing")
        return verdict
    manifest = json.loads(members[MANIFEST])
    verdict.manifest = manifest
    if not trusted_keys:
        verdict.problems.append("no trusted public key to check the signature with")
    else:
        claimed = manifest.get("signing_key", {}).get("public_key")
        keys = [k for k in trusted_keys if k == claimed] or trusted_keys
        good = False
        for k in keys:
            try:
                Ed25519PublicKey.from_public_bytes(base64.b64decode(k)).verify(base64.b64decode(members[SIGNATURE]),
                                                                              members[MANIFEST])
                good = True
                break
            except (InvalidSignature, ValueError):
                continue
        if not good:
            verdict.problems.append("the manifest's signature does not verify with a trusted key (the manifest was "
                                    "changed, or signed by a key not registered for the tenant)")
    listed = manifest.get("files", {})
    for name, meta in sorted(listed.items()):
        if name not in members:
            verdict.problems.append(f"{name} is missing")
        elif hashlib.sha256(members[name]).hexdigest() != meta["sha256"]:
            verdict.problems.append(f"{name} differs from the manifest (SHA-256)")
    extra = sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE})
    if extra:
        verdict.problems.append(f"files not in the manifest: {', '.join(extra)}")
    if "audit_trail.csv" in members:
        verdict.problems += _audit_problems(members["audit_trail.csv"], manifest.get("audit_chain", {}))
    return verdict


def _audit_problems(body: bytes, chain: dict) -> list[str]:
    """Each row's hash recomputed from its fields, each row linked to the one before, the last one the head."""
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    previous = chain.get("previous_hash")
    for r in rows:
        seq = int(r["seq"])
        computed = audit.record_hash(r["tenant_id"] or None, seq, r["actor"], r["action"], r["object_type"],
                                     r["object_id"] or None, r["detail_text"] or None,
                                     datetime.fromisoformat(r["at"]), r["prev_hash"])
        if computed != r["record_hash"]:
            return [f"audit trail row seq {seq} does not have its hash (changed after it was written)"]
        if previous is not None and r["prev_hash"] != previous:
            return [f"audit trail row seq {seq} does not follow the row before it"]
        previous = r["record_hash"]
    if rows and (int(rows[-1]["seq"]) != chain.get("head_seq") or rows[-1]["record_hash"] != chain.get("head_hash")):
        return ["the audit trail's last row is not the chain head the manifest names"]
    return []


def registered_keys(settings: Settings, tenant_id: str) -> list[str]:
    from jobs.store.db import connect

    with connect(settings, tenant_id) as conn:
        return [r["public_key"] for r in conn.execute("SELECT public_key FROM evidence_key WHERE tenant_id = %s "
                                                      "ORDER BY registered_at", (tenant_id,)).fetchall()]


def read_archive(settings: Settings, where: str) -> bytes:
    """A pack from a local path or a lake URI."""
    path = Path(where)
    return path.read_bytes() if path.exists() else storage.read_bytes(settings, where)


def verify_pack(settings: Settings, where: str, public_key: str | None = None) -> Verdict:
    """``recon evidence verify``: against ``public_key`` (base64) when given, else the tenant's registered keys."""
    archive = read_archive(settings, where)
    if public_key:
        return verify(archive, [public_key.strip()])
    try:
        tenant = json.loads(zipfile.ZipFile(io.BytesIO(archive)).read(MANIFEST))["tenant_id"]
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        return Verdict([f"no readable manifest ({exc})"])
    return verify(archive, registered_keys(settings, tenant))
