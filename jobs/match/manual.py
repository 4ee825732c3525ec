"""Manual match / unmatch decisions, recorded in PostgreSQL and applied by every (re)run.

Both are corrections with four eyes (``jobs.corrections``): ``manual_match`` and ``manual_unmatch`` propose; the
decision is recorded here (``record_decision``) when a second person approves it, and only then applies.

* ``match``: a person groups records the engine left open (e.g. a payout whose bank credit differs,
  settled with an adjustment). The next run takes them out of automatic matching and writes the group
  as a level-0 match with rule ``manual``.
* ``unmatch``: a person revokes an active group. Its records are open again from the next run, and
  the engine never re-pairs the same records automatically (forbidden pairs), so the decision
  survives reruns. Exports list only active groups (not revoked).
Every decision is also written to the audit log.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from jobs import audit
from jobs.corrections import Proposal
from jobs.match.rules import BOOK_PSP, PAYOUT_BANK, RELATIONS
from jobs.settings import Settings
from jobs.store.db import connect

Record = tuple[str, int]


class ManualMatchError(ValueError):
    pass


@dataclass(frozen=True)
class ManualAction:
    action_id: int
    action: str                 # match | unmatch
    relation: str
    event_ids: tuple[str, ...]
    match_id: str


def parse_record(label: str) -> Record:
    """``FILE_NAME#RECORD_ORDINAL`` (as the exceptions queue and the exports show a record) -> (name, ordinal)."""
    name, sep, ordinal = label.rpartition("#")
    if not sep or not name or not ordinal.isdigit():
        raise ManualMatchError(f"expected FILE_NAME#RECORD_ORDINAL, got {label!r}")
    return name, int(ordinal)


def manual_group_id(relation: str, event_ids) -> str:
    """Deterministic id of a manual group. It differs from the id the engine would give the same
    members (``refs.match_id``, ``refs.group_match_id``, ``refs.member_set_id``), so re-matching by hand
    what was unmatched is a new, active group."""
    return hashlib.sha256("|".join(["manual", relation, *sorted(event_ids)]).encode()).hexdigest()[:32]


def load_actions(settings: Settings, tenant_id: str) -> list[ManualAction]:
    with connect(settings, tenant_id) as conn:
        rows = conn.execute("SELECT manual_match_id, action, relation, event_ids, match_id FROM manual_match "
                            "WHERE tenant_id = %s AND revoked_at IS NULL ORDER BY manual_match_id", (tenant_id,)).fetchall()
    return [ManualAction(r["manual_match_id"], r["action"], r["relation"], tuple(r["event_ids"]), r["match_id"])
            for r in rows]


def revoked_match_ids(actions: list[ManualAction]) -> set[str]:
    return {a.match_id for a in actions if a.action == "unmatch"}


def _resolve(spark, settings: Settings, tenant_id: str, records: list[Record]) -> dict[Record, tuple]:
    """(file_name, ordinal) -> (event_id, source_kind, amount_minor, currency) from the lake."""
    from pyspark.sql import functions as F

    from jobs import lake

    wanted = F.struct("file_name", "record_ordinal").isin([F.struct(F.lit(f), F.lit(o)) for f, o in records])
    rows = (lake.read(spark, settings, "events", tenant_id).filter(wanted)
            .select("file_name", "record_ordinal", "event_id", "source_kind", "amount_minor", "currency").collect())
    found = {(r.file_name, r.record_ordinal): (r.event_id, r.source_kind, r.amount_minor, r.currency) for r in rows}
    missing = [f"{f}#{o}" for f, o in records if (f, o) not in found]
    if missing:
        raise ManualMatchError(f"no such record(s) for tenant {tenant_id}: {', '.join(missing)}")
    return found


def record_decision(conn, tenant_id: str, action: str, relation: str, event_ids: list[str], match_id: str,
                    labels: list[str], reason: str, proposer: str, approved_by: str) -> None:
    """An approved decision (``jobs.corrections.approve``, in its transaction): from the next run on it applies."""
    conn.execute("INSERT INTO manual_match (tenant_id, action, relation, event_ids, match_id, records, reason, "
                 "created_by, approved_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 (tenant_id, action, relation, event_ids, match_id, labels, reason, proposer, approved_by))
    audit.append(conn, tenant_id, approved_by, f"manual_{action}", "match_group", match_id,
                 {"relation": relation, "records": labels, "reason": reason, "proposed_by": proposer})


def _propose(settings: Settings, tenant_id: str, action: str, relation: str, event_ids: list[str], match_id: str,
             records: list[Record], found: dict, reason: str, actor: str) -> Proposal:
    """The proposal's amount is the largest of its records' (in that record's currency): what an approver's
    limit must cover."""
    from jobs.corrections import propose

    labels = [f"{f}#{o}" for f, o in records]
    _, _, amount, currency = max(found.values(), key=lambda v: abs(v[2]))
    detail = {"action": action, "relation": relation, "event_ids": event_ids, "match_id": match_id,
              "records": labels, "reason": reason}
    return propose(settings, tenant_id, "manual_match" if action == "match" else "unmatch",
                   f"{relation}:{','.join(event_ids)}", detail, abs(amount), currency, reason, actor)


def manual_match(spark, settings: Settings, tenant_id: str, relation: str, records: list[Record], reason: str,
                 actor: str, found: dict[Record, tuple] | None = None) -> Proposal:
    """Propose grouping ``records`` (the group's id is ``Proposal.subject``'s match id, ``manual_group_id``).
    ``found``: the records already resolved (the exceptions queue has them, without Spark), else read from the
    lake."""
    if relation not in RELATIONS:
        raise ManualMatchError(f"relation must be one of {', '.join(RELATIONS)}")
    if not reason.strip() or not actor.strip():
        raise ManualMatchError("a manual match needs a reason and the person who made it")
    found = found if found is not None else _resolve(spark, settings, tenant_id, records)
    kinds = [v[1] for v in found.values()]
    anchor = "book" if relation == BOOK_PSP else "bank"
    if kinds.count(anchor) < 1 or kinds.count("psp") < 1 or set(kinds) - {anchor, "psp"}:
        raise ManualMatchError(f"a {relation} group needs at least one {anchor} record and one PSP record, "
                               f"and nothing else (got {', '.join(sorted(kinds))})")
    if relation == PAYOUT_BANK and kinds.count("bank") != 1:
        raise ManualMatchError("a payout_bank group has exactly one bank entry")
    event_ids = sorted(v[0] for v in found.values())
    return _propose(settings, tenant_id, "match", relation, event_ids, manual_group_id(relation, event_ids), records,
                    found, reason, actor)


def manual_unmatch(spark, settings: Settings, tenant_id: str, record: Record, relation: str, reason: str,
                   actor: str) -> Proposal:
    """Propose revoking the active group of ``relation`` that contains ``record``."""
    from pyspark.sql import functions as F

    from jobs import lake

    if not reason.strip() or not actor.strip():
        raise ManualMatchError("an unmatch needs a reason and the person who made it")
    revoked = revoked_match_ids(load_actions(settings, tenant_id))
    matches = lake.read(spark, settings, "matches", tenant_id).filter(F.col("relation") == relation)
    groups = [r.match_id for r in matches.filter((F.col("file_name") == record[0])
                                                 & (F.col("record_ordinal") == record[1]))
              .select("match_id").distinct().collect() if r.match_id not in revoked]
    if not groups:
        raise ManualMatchError(f"{record[0]}#{record[1]} is in no active {relation} match")
    mid = groups[0]
    members = matches.filter(F.col("match_id") == mid).select("event_id", "file_name", "record_ordinal").distinct().collect()
    records = sorted((m.file_name, m.record_ordinal) for m in members)
    return _propose(settings, tenant_id, "unmatch", relation, sorted({m.event_id for m in members}), mid, records,
                    _resolve(spark, settings, tenant_id, records), reason, actor)


def active_matches(spark, settings: Settings, tenant_id: str, since=None, until=None):
    """gold/matches (of the runs from ``since`` to ``until``) without the groups people revoked: what
    exports and figures call "matched"."""
    from pyspark.sql import functions as F

    from jobs import lake

    matches = lake.read(spark, settings, "matches", tenant_id, since=since, until=until)
    revoked = sorted(revoked_match_ids(load_actions(settings, tenant_id))) if settings.has_database else []
    return matches.filter(~F.col("match_id").isin(revoked)) if revoked else matches
