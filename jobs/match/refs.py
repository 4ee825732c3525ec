"""Reference normalisation shared by the levels (native column expressions)."""
from __future__ import annotations

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
