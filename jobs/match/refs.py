"""Reference normalisation shared by the levels (native column expressions)."""
from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F


def norm_ref(col: Column, prefixes: tuple[str, ...]) -> Column:
    """Upper case, separators and punctuation removed, one known prefix (ORDER, REF...) stripped:
    ``' order #ORD-000123 '`` -> ``ORD000123``. Empty -> null."""
    compact = F.regexp_replace(F.upper(col), "[^A-Z0-9]", "")
    if prefixes:
        pattern = "^(" + "|".join(sorted(prefixes, key=len, reverse=True)) + ")(?=.)"
        compact = F.regexp_replace(compact, pattern, "")
    return F.when(compact == "", F.lit(None)).otherwise(compact)


def ref_core(col: Column, prefixes: tuple[str, ...]) -> Column:
    """The identifying part of a reference, compared whenever one of the two references was found in
    free text (which writes one order as ``Order #240133``, ``ACME order 240133`` or ``ORD-0240133``):
    upper case, anything but letters and digits removed, the known prefixes at the start stripped (as
    many as there are: ``ORDER ORD-`` is two), then leading zeros. Both sides go through it alike, so
    ``'ORD-000240133'``, ``'#240133'`` -> ``240133``; a reference field compared with a reference field
    keeps ``norm_ref``. Empty -> null."""
    compact = F.regexp_replace(F.upper(col), "[^A-Z0-9]", "")
    if prefixes:
        compact = F.regexp_replace(compact, "^(?:" + "|".join(sorted(prefixes, key=len, reverse=True)) + ")+(?=.)", "")
    compact = F.regexp_replace(compact, "^0+(?=.)", "")
    return F.when(compact == "", F.lit(None)).otherwise(compact)


def norm_id(col: Column) -> Column:
    """A PSP id compared case- and whitespace-insensitively."""
    compact = F.regexp_replace(F.upper(col), r"\s+", "")
    return F.when(compact == "", F.lit(None)).otherwise(compact)


def match_id(relation: str, *member_ids: Column) -> Column:
    """Deterministic id of a match group: same members -> same id on every rerun."""
    return F.substring(F.sha2(F.concat_ws("|", F.lit(relation), F.array_join(F.array_sort(F.array(*member_ids)), "|")),
                              256), 1, 32)


def group_match_id(relation: str, member_array: Column) -> Column:
    return F.substring(F.sha2(F.concat_ws("|", F.lit(relation), F.array_join(F.array_sort(member_array), "|")), 256),
                       1, 32)


def member_set_id(relation: str, event_id: Column) -> Column:
    """Aggregate: deterministic id of the group whose member rows are aggregated, the same whatever
    their order, with no list of the members (a payout can hold millions of records, a list that
    size sorted in one task): the member count and the sum of each member's sha256 prefix (64 bits as
    an unsigned integer). ``member_set_id_of`` computes the same in Python."""
    h = F.conv(F.substring(F.sha2(event_id, 256), 1, 16), 16, 10).cast("decimal(20,0)")
    digest = F.concat_ws("|", F.lit(relation), F.count(event_id).cast("string"), F.sum(h).cast("string"))
    return F.substring(F.sha2(digest, 256), 1, 32)


def member_set_id_of(relation: str, event_ids) -> str:
    """``member_set_id`` of a group, in Python (tests, audit tools)."""
    ids = list(event_ids)
    total = sum(int(hashlib.sha256(e.encode()).hexdigest()[:16], 16) for e in ids)
    return hashlib.sha256(f"{relation}|{len(ids)}|{total}".encode()).hexdigest()[:32]
