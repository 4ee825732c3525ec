"""Score the pipeline's exports against a generator's ground truth (tests and ``make bench-quality``).

Never used by the pipeline itself. Inputs are the documented exports (``recon export --what matches``
and ``--what exceptions``) and the truth files of ``jobs.generate``; records are (file_name,
record_ordinal). Pairs are scored: a match group of n book/bank records and m PSP records contributes
n x m (anchor, PSP record) pairs, so a split capture or a payout counts every member.
  precision = correct pairs / pairs we made;   recall = correct pairs / true pairs available by the run date
  reason accuracy = expected (record, reason) due by the run date that we report / all expected ones
Per case (the truth's ``kind``): the true pairs available, how many we made and how many at the expected
level; and for the exceptions the truth names a case for (``kind`` column), how many we report.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

Record = tuple[str, int]
BANK_FILE_PREFIXES = ("camt053_", "mt940_", "bai2_")     # jobs/generate: camt_file, mt940_file, bai2_file


def role_of(file_name: str) -> str:
    """The generator's file naming: book_payments_*, a bank statement (camt053_*, mt940_*, bai2_*), else a
    PSP report."""
    if file_name.startswith("book_payments_"):
        return "book"
    if file_name.startswith(BANK_FILE_PREFIXES):
        return "bank"
    return "psp"


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _pairs(groups: dict[str, list[Record]], anchor: str) -> set[tuple[Record, Record]]:
    out = set()
    for members in groups.values():
        anchors = [m for m in members if role_of(m[0]) == anchor]
        psps = [m for m in members if role_of(m[0]) == "psp"]
        out.update((a, p) for a in anchors for p in psps)
    return out


@dataclass
class Score:
    relation: str
    made: int
    correct: int
    available: int

    @property
    def precision(self) -> float:
        return self.correct / self.made if self.made else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.available if self.available else 1.0


@dataclass
class Evaluation:
    run_date: date
    relations: dict[str, Score]
    by_level: dict[str, Score]
    reasons_expected: int
    reasons_found: int
    reasons_by_code: dict[str, tuple[int, int]] = field(default_factory=dict)   # code -> (found, expected)
    unexpected_exceptions: dict[str, int] = field(default_factory=dict)        # code -> count
    false_pairs: list[tuple[str, Record, Record]] = field(default_factory=list)
    missed_pairs: list[tuple[str, Record, Record]] = field(default_factory=list)
    by_kind: dict[str, tuple[int, int, int]] = field(default_factory=dict)     # kind -> (available, made, at level)
    reasons_by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (found, expected)

    @property
    def reason_accuracy(self) -> float:
        return self.reasons_found / self.reasons_expected if self.reasons_expected else 1.0

    def as_dict(self) -> dict:
        rel = {k: {"pairs_made": s.made, "pairs_correct": s.correct, "pairs_available": s.available,
                   "precision": round(s.precision, 6), "recall": round(s.recall, 6)} for k, s in self.relations.items()}
        lvl = {k: {"pairs_made": s.made, "pairs_correct": s.correct, "pairs_available": s.available,
                   "precision": round(s.precision, 6), "recall": round(s.recall, 6)} for k, s in self.by_level.items()}
        return {"run_date": self.run_date.isoformat(), "relations": rel, "levels": lvl,
                "reason_accuracy": round(self.reason_accuracy, 6), "reasons_expected": self.reasons_expected,
                "reasons_found": self.reasons_found,
                "reasons_by_code": {k: {"found": f, "expected": e} for k, (f, e) in sorted(self.reasons_by_code.items())},
                "unexpected_exceptions": dict(sorted(self.unexpected_exceptions.items())),
                "kinds": {k: {"pairs_available": a, "pairs_made": m, "at_expected_level": lv}
                          for k, (a, m, lv) in sorted(self.by_kind.items())},
                "reasons_by_kind": {k: {"found": f, "expected": e} for k, (f, e) in sorted(self.reasons_by_kind.items())}}


def evaluate(truth_dir: Path, matches_csv: Path, exceptions_csv: Path, run_date: date) -> Evaluation:
    truth_groups: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    available: dict[str, date] = {}
    level_of_pair: dict[tuple[Record, Record], str] = {}
    for r in _rows(truth_dir / "groups.csv"):
        truth_groups[r["relation"]][r["group_id"]].append((r["file_name"], int(r["record_ordinal"])))
        available[r["group_id"]] = date.fromisoformat(r["available_date"])
    ours: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    our_level: dict[str, str] = {}
    for r in _rows(matches_csv):
        ours[r["relation"]][r["match_id"]].append((r["file_name"], int(r["record_ordinal"])))
        our_level[r["match_id"]] = f"{r['relation']}/L{r['level']}"
    truth_level = {r["group_id"]: f"{r['relation']}/L{r['expected_level']}" for r in _rows(truth_dir / "groups.csv")}
    truth_kind = {r["group_id"]: r["kind"] for r in _rows(truth_dir / "groups.csv")}
    kind_of_pair: dict[tuple[Record, Record], str] = {}
    made_level: dict[tuple[Record, Record], str] = {}

    relations, by_level, false_pairs, missed = {}, defaultdict(lambda: [0, 0, 0]), [], []
    for relation, anchor in (("book_psp", "book"), ("payout_bank", "bank")):
        avail_groups = {g: m for g, m in truth_groups[relation].items() if available[g] <= run_date}
        true_pairs = _pairs(avail_groups, anchor)
        all_true = _pairs(truth_groups[relation], anchor)
        for g, members in avail_groups.items():
            for p in _pairs({g: members}, anchor):
                level_of_pair[p] = truth_level[g]
                kind_of_pair[p] = truth_kind[g]
        made = set()
        for mid, members in ours[relation].items():
            pairs = _pairs({mid: members}, anchor)
            made |= pairs
            for p in pairs:
                key = our_level[mid]
                made_level[p] = key
                by_level[key][0] += 1
                if p in all_true:
                    by_level[key][1] += 1
                else:
                    false_pairs.append((relation, *p))
        correct = made & all_true
        relations[relation] = Score(relation, len(made), len(correct), len(true_pairs))
        missed += [(relation, *p) for p in true_pairs - made]
        for p in true_pairs:
            by_level[level_of_pair[p]][2] += 1
    levels = {k: Score(k, v[0], v[1], v[2]) for k, v in sorted(by_level.items())}
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for p, kind in kind_of_pair.items():
        kinds[kind][0] += 1
        kinds[kind][1] += p in made_level
        kinds[kind][2] += made_level.get(p) == level_of_pair[p]

    truth_exceptions = _rows(truth_dir / "exceptions.csv")
    expected = {(r["file_name"], int(r["record_ordinal"]), r["reason_code"]) for r in truth_exceptions
                if date.fromisoformat(r["due_date"]) <= run_date}
    reported = {(r["file_name"], int(r["record_ordinal"]), r["reason_code"]) for r in _rows(exceptions_csv)}
    by_code: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f, o, code in expected:
        by_code[code][1] += 1
        if (f, o, code) in reported:
            by_code[code][0] += 1
    by_exc_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in truth_exceptions:
        key = (r["file_name"], int(r["record_ordinal"]), r["reason_code"])
        if r.get("kind") and key in expected:
            by_exc_kind[r["kind"]][1] += 1
            by_exc_kind[r["kind"]][0] += key in reported
    pending = {(r["file_name"], int(r["record_ordinal"]), r["reason_code"]) for r in truth_exceptions}
    unexpected: dict[str, int] = defaultdict(int)
    for f, o, code in reported - pending:
        unexpected[code] += 1
    return Evaluation(run_date, relations, levels, len(expected), len(expected & reported),
                      {k: (v[0], v[1]) for k, v in by_code.items()}, dict(unexpected), false_pairs, sorted(missed),
                      {k: (v[0], v[1], v[2]) for k, v in kinds.items()},
                      {k: (v[0], v[1]) for k, v in by_exc_kind.items()})
