"""The generator's files in every format go through the real parsers and agree with the generator's truth:
every truth record is a loaded event, a payout group's PSP rows sum to its bank entry, a book row and
its PSP row(s) carry the same amount (and, at level 1, the same PSP id)."""
from __future__ import annotations

import csv
import hashlib
import shutil
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from formats.conftest import files

pytestmark = pytest.mark.spark
VARIANTS = {
    "g1": dict(psps=["stripe", "adyen", "paypal", "braintree", "checkout"], bank_format="mt940",
               xlsx=["adyen", "checkout"], days=5),
    "g2": dict(psps=["stripe", "paypal", "braintree"], stripe_format="balance_history", paypal_format="trr",
               bank_format="bai2", xlsx=["stripe", "braintree"]),
    "g3": dict(psps=["stripe", "checkout"], stripe_format="events", bank_format="camt053", xlsx=["book"]),
}
TRUTH: dict[str, Path] = {}


@files
def generated(work: Path) -> list[Path]:
    from jobs.generate import generate

    out, seen = [], set()
    for name, options in VARIANTS.items():
        generate(work / name, seed=11, end_date=date(2026, 11, 20), payments_per_day=40, tenants=["acme"],
                 noise="high", **{"days": 3, **options})
        TRUTH[name] = work / name / "acme" / "truth"
        for path in sorted(p for p in (work / name / "acme" / "landing").rglob("*") if p.is_file()):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:                                      # a redelivery: landing skips it
                continue
            seen.add(digest)
            target = work / f"{name}_{path.name}"
            shutil.copyfile(path, target)
            out.append(target)
    return out


def _truth(name: str, table: str) -> list[dict]:
    return list(csv.DictReader((TRUTH[name] / table).open()))


def test_generated_files_parse_cleanly_and_agree_with_the_truth(formats_run):
    reached = set()
    for variant in sorted(VARIANTS):
        reached |= _check_variant(formats_run, variant)
    assert reached == {"stripe", "adyen", "paypal", "braintree", "checkout"}   # every PSP's payouts hit a bank


def _check_variant(formats_run, variant: str) -> set[str]:
    mine = {n for n in formats_run.landed if n.startswith(f"{variant}_")}
    assert mine and all(formats_run.landed[n] != "unknown" for n in mine)
    for n in mine:
        stats = formats_run.stats[n]
        assert stats.records_quarantined == 0 and stats.control_totals_ok is not False, (n, stats.detail)
    ev = {(f, o): e for (f, o), e in formats_run.events.items() if f in mine}
    record = lambda row: ev[(f"{variant}_{row['file_name']}", int(row["record_ordinal"]))]  # noqa: E731
    groups = defaultdict(list)
    for row in _truth(variant, "groups.csv"):
        groups[(row["relation"], row["group_id"])].append(row)
    for row in _truth(variant, "exceptions.csv"):
        record(row)                                              # every record the truth names was loaded
    checked = defaultdict(int)
    for (relation, _), members in groups.items():
        events = [record(m) for m in members]
        psp = [e for e in events if e.source_kind == "psp"]
        if relation == "payout_bank":
            bank, = [e for e in events if e.source_kind == "bank"]
            rows = [e for e in psp if e.event_type != "payout"]
            expected = sum(e.net_minor for e in rows) if rows else -sum(e.net_minor for e in psp)
            assert bank.amount_minor == expected and len({e.payout_ref for e in psp}) == 1
            checked[psp[0].source] += 1
            continue
        book, = [e for e in events if e.source_kind == "book"]
        amount = sum(e.presentment_amount_minor if e.presentment_currency else e.amount_minor for e in psp)
        if members[0]["expected_level"] != "3":
            assert amount == book.amount_minor and {e.presentment_currency or e.currency for e in psp} == {book.currency}
        if members[0]["expected_level"] == "1":
            assert book.psp_ref in {e.psp_ref for e in psp}
    assert checked, variant
    return set(checked)
