"""The audit trail's hash chain, checked: ``recon audit verify --tenant T``.

The database chains every row it appends to ``audit_log`` (``sql/migrations/V007__audit_hash_chain.sql``): per
tenant a sequence 1, 2, 3..., the previous row's hash and the row's own SHA-256 over a canonical encoding. This
module recomputes the chain independently of the database's functions, from the stored values, and names the
first broken link: a row changed after it was written (its hash), a row deleted (a gap in the sequence), rows
reordered or a forged hash (the previous-hash link). It also gives the chain's head (last sequence and hash): an
auditor who keeps a head can later prove that nothing before it was rewritten.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from jobs.settings import Settings
from jobs.store.db import connect

GENESIS = "0" * 64


def _field(value: str | None) -> str:
    return "-;" if value is None else f"{len(value)}:{value};"


def record_hash(tenant_id: str | None, seq: int, actor: str, action: str, object_type: str, object_id: str | None,
                detail_text: str | None, at: datetime, prev_hash: str) -> str:
    """The row's hash: the same encoding the database's ``audit_log_hash`` uses (``detail_text``: jsonb's text)."""
    stamp = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    canonical = "".join(_field(v) for v in (tenant_id, str(seq), actor, action, object_type, object_id, detail_text,
                                            stamp, prev_hash))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verification:
    tenant_id: str
    records: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None         # the sequence number of the first broken link
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    def describe(self) -> str:
        if self.ok:
            return (f"audit trail of {self.tenant_id}: {self.records} record(s), chain intact; head seq {self.head_seq} "
                    f"hash {self.head_hash}")
        return f"audit trail of {self.tenant_id}: BROKEN at seq {self.broken_at}: {self.problem}"


def append(conn, tenant_id: str, actor: str, action: str, object_type: str, object_id: str | None,
           detail: dict) -> None:
    """One row of the audit trail, in ``conn``'s transaction (the database chains it). A card number a person typed
    into a reason or note is stored masked, as everywhere else."""
    from jobs.cards import mask_json_payload

    text = mask_json_payload(json.dumps(detail).encode("utf-8")).decode("utf-8")
    conn.execute("INSERT INTO audit_log (tenant_id, actor, action, object_type, object_id, detail) "
                 "VALUES (%s, %s, %s, %s, %s, %s)", (tenant_id, actor, action, object_type, object_id, text))


def verify_rows(tenant_id: str, rows: list[dict]) -> Verification:
    """``rows``: the tenant's audit rows in sequence order, with ``detail_text`` (jsonb's text of ``detail``)."""
    expected_prev, expected_seq = GENESIS, 1
    for r in rows:
        seq = r["seq"]
        if seq != expected_seq:
            what = "missing (deleted)" if seq > expected_seq else "repeated"
            gap = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            return Verification(tenant_id, len(rows), seq, r["record_hash"], expected_seq,
                                f"record(s) {gap} {what}" if seq > expected_seq else f"seq {seq} {what}")
        if r["prev_hash"] != expected_prev:
            return Verification(tenant_id, len(rows), seq, r["record_hash"], seq,
                                f"audit_id {r['audit_id']} does not follow the record before it (previous hash "
                                f"{r['prev_hash'][:12]}..., expected {expected_prev[:12]}...)")
        computed = record_hash(r["tenant_id"], seq, r["actor"], r["action"], r["object_type"], r["object_id"],
                               r["detail_text"], r["at"], r["prev_hash"])
        if computed != r["record_hash"]:
            return Verification(tenant_id, len(rows), seq, r["record_hash"], seq,
                                f"audit_id {r['audit_id']} ({r['action']} by {r['actor']}) was changed after it was "
                                "written (its content no longer has its hash)")
        expected_prev, expected_seq = r["record_hash"], seq + 1
    return Verification(tenant_id, len(rows), expected_seq - 1, expected_prev)


def verify(settings: Settings, tenant_id: str) -> Verification:
    """Recompute ``tenant_id``'s chain from the stored rows (read as the tenant, under row-level security)."""
    with connect(settings, tenant_id) as conn:
        rows = conn.execute(
            "SELECT audit_id, tenant_id, seq, actor, action, object_type, object_id, detail::text AS detail_text, at, "
            "prev_hash, record_hash FROM audit_log WHERE tenant_id = %s ORDER BY seq", (tenant_id,)).fetchall()
    return verify_rows(tenant_id, rows)
