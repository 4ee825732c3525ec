"""Ground truth: the true match groups and the exceptions, relative to the files actually delivered.

Every record is (file_name, record_ordinal). Records are numbered in one table (book rows, Stripe
rows, Adyen rows, bank entries) so groups and exceptions are plain (group, record) and (record,
reason, due) arrays; see ``README`` for the column contract.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jobs.generate import noise as nz
from jobs.generate import text
from jobs.generate.adyen import PAYOUT as ADYEN_PAYOUT_ROW, REFUNDED, SETTLED
from jobs.generate.bank import PAYOUT, UNRELATED
from jobs.generate.book import PAYMENT
from jobs.generate.dates import add_business_days, fmt_day
from jobs.generate.events import gather
from jobs.generate.stripe import CHARGE, REFUND
from jobs.generate.world import STRIPE

STRIPE_PAYOUT_ROW = 4          # jobs.generate.simple_psp.PAYOUT_ROW: the balance history / webhook payout row

RELATIONS = ["book_psp", "payout_bank"]
REASONS = ["MISSING_IN_PSP", "MISSING_IN_BOOK", "MISSING_IN_BANK", "PAYOUT_MISMATCH", "AMOUNT_MISMATCH",
           "CURRENCY_MISMATCH", "DUPLICATE"]
MISSING_IN_PSP, MISSING_IN_BOOK, MISSING_IN_BANK, PAYOUT_MISMATCH, AMOUNT_MISMATCH, CURRENCY_MISMATCH, DUPLICATE = \
    range(7)
AMOUNT_KINDS = (nz.AMOUNT_MISMATCH, nz.TEXT_AMOUNT_MISMATCH)        # the book amount differs from the PSP's
MISMATCH_KINDS = AMOUNT_KINDS + (nz.CURRENCY_MISMATCH, nz.TEXT_CURRENCY_MISMATCH)
KINDS = nz.KIND_LABELS + ["fx", "refund", "partial_refund", "payout", "negative_payout"]
FX, REFUND_KIND, PARTIAL_REFUND, PAYOUT_KIND, NEGATIVE_PAYOUT = range(len(nz.KIND_LABELS), len(KINDS))
BOOK_PSP_BD, PAYOUT_BANK_BD = 3, 2

README = """# Ground truth ({tenant})

Not read by the pipeline: tests and the quality benchmark score its matches and exceptions against
these files. A record is `(file_name, record_ordinal)`: the base name of the delivered file and the
1-based position among its data records (CSV rows after the header, JSON lines, camt.053 `Ntry`
elements in document order across all `Stmt`s); a file delivered a second time under another name
is not referenced (landing skips it by content). `groups.csv` has one row per member of each true
match group: `relation` is `book_psp` (a book row with the PSP row(s) of the same payment or refund)
or `payout_bank` (a bank entry with every PSP row of its payout: Stripe charges, refunds, disputes
and fee rows; Adyen rows of the batch including Fee and MerchantPayout), `expected_level` is 1 exact
PSP id, 2 normalised order reference (trim, upper case, drop a leading `#` or `ORDER `), 3 tolerance
(1 minor unit FX rounding, or amount + time with no usable reference), 4 many-to-one (split
captures and all payouts), `kind` names the case and `available_date` is the delivery date of the
group's last member. `exceptions.csv` has one row per record and reason that must be reported:
`MISSING_IN_PSP`, `MISSING_IN_BOOK` ({bp} Mon-Fri business days after the record's delivery),
`MISSING_IN_BANK` ({pb} business days after the payout's expected arrival as the PSP file states it:
Stripe's automatic_payout_effective_at date or the Adyen batch close date; on the Adyen
MerchantPayout row, or on every row of a Stripe payout), `PAYOUT_MISMATCH` (the bank entry, on its
delivery date), `AMOUNT_MISMATCH` / `CURRENCY_MISMATCH` (both records, once both arrived) and
`DUPLICATE` (the later copy, on its delivery date); `due_date` is the first run date on which it
must be reported, and rows due after the last generated day are listed too (filter on
`due_date <= run date`); `kind` names the case of an `AMOUNT_MISMATCH` / `CURRENCY_MISMATCH` (the
pair linked by the PSP id: `amount_mismatch`, `currency_mismatch`; by the order reference the PSP row
has only in its free text: `ref_in_text_amount_mismatch`, `ref_in_text_currency_mismatch`), empty
otherwise. Kind `ref_in_text` (level 2): the book row has no PSP id and the PSP row carries the order
reference only in its free text (Stripe description, PayPal Custom Field / Transaction Subject) as
`Order #<n>`, `<TENANT> order <n>` or `Invoice INV-<n> / <year>` for the book's `ORD-<n>`. Everything is relative to the files delivered in the window: a record whose
counterpart would only arrive after the last day is in no group but listed as an exception due
after that day, and one record can carry two reasons (e.g. a PSP charge with no book row in a
payout with no bank credit). Group ids are `BP<9 digits>` (book_psp) and `PB<9 digits>`
(payout_bank).
"""

FORMATS_NOTE = """
## Other delivery formats

Record ordinals count data records in every format: CSV data rows (also in a workbook's first sheet,
after its header), JSON lines (Stripe webhook events), PayPal `SB` rows, camt.053 `Ntry` elements,
MT940 `:61:` lines, BAI2 `16` records. A payout's group holds the bank entry and the PSP rows that
carry its id: Stripe balance history rows with their `payout` row; the webhook `payout.paid` event
only (webhook charge events carry no payout link); the PayPal rows of a currency before their T0400
withdrawal in the day's report, with that row; a Braintree settlement batch; the Checkout.com
settlement breakdown rows of a payout with its Payouts report row. `MISSING_IN_BANK` is on the row
restating the payout where the format has one (Stripe balance history / webhook, PayPal, Checkout.com)
and on every row otherwise (Stripe itemized, Braintree). Checkout.com refunds are expected at level 2:
the settlement breakdown carries the payment id and the order reference, not the refund's id.
"""


@dataclass
class Records:
    """All delivered records of a tenant, in one numbering: book, Stripe, Adyen, the other PSPs' tables
    (``extra``), bank."""
    file: np.ndarray
    ordinal: np.ndarray
    day: np.ndarray
    b0: int
    s0: int
    a0: int
    e0: int
    extra: dict = field(default_factory=dict)      # table name -> first record number


@dataclass
class PspTable:
    """Rows of one more PSP table (PayPal, Braintree, Checkout.com breakdown or payouts report)."""
    recs: np.ndarray            # record numbers
    tx: np.ndarray              # a payment/capture or refund row (takes part in book_psp)
    is_ref: np.ndarray
    ent: np.ndarray             # payment index (payments) or refund index (refunds), -1 otherwise
    payout: np.ndarray          # index into the Payouts table, -1 when none
    payout_row: np.ndarray      # the row restating its payout
    level2_refunds: bool = False  # the report has no refund id: refunds match on the order reference

def _first_index(n: int, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """out[k] = values at the first position of key k (-1 where k never occurs)."""
    out = np.full(n, -1, dtype=np.int64)
    uniq, first = np.unique(keys, return_index=True)
    out[uniq] = values[first]
    return out


@dataclass
class Truth:
    """Members (gid, rec) sorted by group then record; per-group arrays indexed by gid (book_psp groups
    first, then payout_bank groups); exceptions (rec, reason, due) sorted by record then reason."""
    gid: np.ndarray
    rec: np.ndarray
    rel: np.ndarray
    level: np.ndarray
    kind: np.ndarray
    avail: np.ndarray
    n_book_psp: int
    exc_rec: np.ndarray
    exc_reason: np.ndarray
    exc_due: np.ndarray
    exc_kind: np.ndarray        # index into KINDS, -1: none named


class _Collector:
    def __init__(self):
        self.members, self.groups, self.exc = [], [], []
        self.n = 0

    def groups_of(self, rel: int, level, kind, avail) -> int:
        """Register len(avail) groups; return the gid of the first."""
        k = len(avail)
        self.groups.append((np.full(k, rel, np.int8), np.broadcast_to(level, k).astype(np.int8),
                            np.asarray(kind, np.int8), np.asarray(avail, np.int32)))
        self.n += k
        return self.n - k

    def member(self, gid: np.ndarray, recs: np.ndarray) -> None:
        self.members.append((np.asarray(gid, np.int32), np.asarray(recs, np.int32)))

    def exception(self, recs: np.ndarray, reason: int, due, kind=-1) -> None:
        recs = np.asarray(recs, np.int32)
        self.exc.append((recs, np.full(len(recs), reason, np.int8), np.broadcast_to(due, len(recs)).astype(np.int32),
                         np.broadcast_to(kind, len(recs)).astype(np.int8)))


def collect(p, r, brows, srows, arows, payouts, entries, rec: Records, end_day: int,
            tables: tuple = ()) -> _Collector:
    """Every group membership and exception, unsorted (``finish`` sorts them). ``tables``: ``PspTable``s of
    the other PSPs."""
    c = _Collector()
    bpos = np.flatnonzero(~brows.dup)
    is_pay = brows.src[bpos] == PAYMENT
    pay_book = _first_index(len(p), brows.ent[bpos[is_pay]], rec.b0 + bpos[is_pay])
    ref_book = _first_index(len(r), brows.ent[bpos[~is_pay]], rec.b0 + bpos[~is_pay])
    s_tx = np.flatnonzero(((srows.cat == CHARGE) | (srows.cat == REFUND)) & ~srows.dup)
    a_tx = np.flatnonzero((arows.typ == SETTLED) | (arows.typ == REFUNDED))
    tx_rec = np.concatenate([rec.s0 + s_tx, rec.a0 + a_tx, *[t.recs[t.tx] for t in tables]])
    tx_is_ref = np.concatenate([srows.cat[s_tx] == REFUND, arows.typ[a_tx] == REFUNDED,
                                *[t.is_ref[t.tx] for t in tables]])
    tx_ent = np.concatenate([np.where(srows.cat[s_tx] == REFUND, srows.ref[s_tx], srows.pay[s_tx]),
                             np.where(arows.typ[a_tx] == REFUNDED, arows.ref[a_tx], arows.pay[a_tx]),
                             *[t.ent[t.tx] for t in tables]])
    level2 = np.concatenate([np.zeros(len(s_tx) + len(a_tx), bool),
                             *[t.is_ref[t.tx] & t.level2_refunds for t in tables]])
    del s_tx, a_tx
    tx_book = np.where(tx_is_ref, gather(ref_book, tx_ent, tx_is_ref), gather(pay_book, tx_ent, ~tx_is_ref))
    del pay_book, ref_book
    kind = np.where(tx_is_ref, nz.EXACT, gather(p.kind, tx_ent, ~tx_is_ref))
    mismatch = np.isin(kind, MISMATCH_KINDS)
    # book_psp groups: one per book record that has (non-mismatched) PSP rows
    ok = (tx_book >= 0) & ~mismatch
    books, gidx = np.unique(tx_book[ok], return_inverse=True)
    first = _first_index(len(books), gidx, np.flatnonzero(ok))
    g_is_ref, g_ent = tx_is_ref[first], tx_ent[first]
    g_pay = np.where(g_is_ref, gather(r.pay, g_ent, g_is_ref), g_ent)
    g_kind = np.where(g_is_ref, np.where(gather(r.partial, g_ent, g_is_ref), PARTIAL_REFUND, REFUND_KIND),
                      p.kind[g_pay])
    g_kind = np.where(~g_is_ref & (g_kind == nz.EXACT) & p.fx[g_pay], FX, g_kind)
    g_level = np.asarray(nz.KIND_LEVEL + [1] * (len(KINDS) - len(nz.KIND_LEVEL)))[g_kind]
    g_level = np.where(level2[first] & (g_level == 1), 2, g_level)
    avail = rec.day[books].astype(np.int32)
    np.maximum.at(avail, gidx, rec.day[tx_rec[ok]].astype(np.int32))
    g0 = c.groups_of(0, g_level, g_kind, avail)
    c.member(g0 + np.arange(len(books)), books)
    c.member(g0 + gidx, tx_rec[ok])
    del books, gidx, first, g_is_ref, g_ent, g_pay, g_kind, g_level, avail, level2
    # mismatched pairs: an exception on both records, due once both arrived
    mm = (tx_book >= 0) & mismatch
    reason = np.where(np.isin(kind[mm], AMOUNT_KINDS), AMOUNT_MISMATCH, CURRENCY_MISMATCH)
    due = np.maximum(rec.day[tx_book[mm]], rec.day[tx_rec[mm]])
    for code in (AMOUNT_MISMATCH, CURRENCY_MISMATCH):
        c.exception(tx_book[mm][reason == code], code, due[reason == code], kind[mm][reason == code])
        c.exception(tx_rec[mm][reason == code], code, due[reason == code], kind[mm][reason == code])
    # PSP rows without a book row; book rows without a delivered PSP row
    nb = tx_book < 0
    c.exception(tx_rec[nb], MISSING_IN_BOOK, add_business_days(rec.day[tx_rec[nb]], BOOK_PSP_BD))
    matched = np.zeros(len(rec.file), bool)
    matched[tx_book[tx_book >= 0]] = True
    lonely = rec.b0 + bpos[~matched[rec.b0 + bpos]]
    del matched, tx_book, tx_rec, tx_is_ref, tx_ent, kind, mismatch, ok
    c.exception(lonely, MISSING_IN_PSP, add_business_days(rec.day[lonely], BOOK_PSP_BD))
    dups = np.concatenate([rec.b0 + np.flatnonzero(brows.dup), rec.s0 + np.flatnonzero(srows.dup)])
    c.exception(dups, DUPLICATE, rec.day[dups])
    _payout_truth(c, payouts, entries, srows, arows, rec, end_day, tables)
    return c


def finish(c: _Collector) -> Truth:
    """Sort members by group then record (record numbering follows file and ordinal order) and
    exceptions by record then reason."""
    gid = np.concatenate([m[0] for m in c.members])
    recs = np.concatenate([m[1] for m in c.members])
    c.members.clear()
    order = np.lexsort((recs, gid))
    gid, recs = gid[order], recs[order]
    del order
    rel, level, kind, avail = (np.concatenate([g[i] for g in c.groups]) for i in range(4))
    e_rec, e_reason, e_due, e_kind = (np.concatenate([e[i] for e in c.exc]) for i in range(4))
    e_order = np.lexsort((e_reason, e_rec))
    return Truth(gid=gid, rec=recs, rel=rel, level=level, kind=kind, avail=avail,
                 n_book_psp=int((rel == 0).sum()), exc_rec=e_rec[e_order], exc_reason=e_reason[e_order],
                 exc_due=e_due[e_order], exc_kind=e_kind[e_order])


def build(p, r, brows, srows, arows, payouts, entries, rec: Records, end_day: int, tables: tuple = ()) -> Truth:
    return finish(collect(p, r, brows, srows, arows, payouts, entries, rec, end_day, tables))


def _payout_truth(c: _Collector, payouts, entries, srows, arows, rec: Records, end_day: int,
                  tables: tuple = ()) -> None:
    n_s = int((payouts.psp == STRIPE).sum())
    row_payout = np.concatenate([np.where(srows.dup, -1, srows.payout), n_s + arows.batch,
                                 *[t.payout for t in tables]])
    row_rec = np.concatenate([rec.s0 + np.arange(len(srows)), rec.a0 + np.arange(len(arows)),
                              *[t.recs for t in tables]])
    is_payout_row = np.concatenate([srows.cat == STRIPE_PAYOUT_ROW, arows.typ == ADYEN_PAYOUT_ROW,
                                    *[t.payout_row for t in tables]])
    pe = np.flatnonzero(entries.source == PAYOUT)
    j = entries.payout[pe]
    good = payouts.bank_amount[j] == payouts.amount[j]
    e_rec = rec.e0 + pe[good]
    kinds = np.where(payouts.amount[j[good]] < 0, NEGATIVE_PAYOUT, PAYOUT_KIND)
    avail = rec.day[e_rec].astype(np.int32)             # PSP files arrive on or before the bank entry
    g0 = c.groups_of(1, 4, kinds, avail)
    entry_of = np.full(len(payouts), -1, np.int64)
    entry_of[j[good]] = g0 + np.arange(good.sum())
    c.member(g0 + np.arange(good.sum()), e_rec)
    g = gather(entry_of, row_payout, fill=-1)
    member = g >= 0
    c.member(g[member], row_rec[member])
    bad = rec.e0 + pe[~good]
    c.exception(bad, PAYOUT_MISMATCH, rec.day[bad])
    unrel = rec.e0 + np.flatnonzero(entries.source == UNRELATED)
    c.exception(unrel, MISSING_IN_PSP, add_business_days(rec.day[unrel], BOOK_PSP_BD))
    tail = (payouts.arrival > end_day) & (payouts.file_day <= end_day)
    missing = (payouts.missing | tail) & (payouts.amount != 0)
    flagged = gather(missing, row_payout, fill=False)
    flagged &= np.where(gather(payouts.has_row, row_payout, fill=False), is_payout_row, True)
    c.exception(row_rec[flagged], MISSING_IN_BANK, add_business_days(payouts.file_day[row_payout[flagged]],
                                                                      PAYOUT_BANK_BD))


def write(truth_dir: Path, tenant: str, t: Truth, rec: Records, names: list[str]) -> None:
    truth_dir.mkdir(parents=True, exist_ok=True)
    (truth_dir / "README.md").write_text(README.format(tenant=tenant, bp=BOOK_PSP_BD, pb=PAYOUT_BANK_BD))

    def build_groups(a: int, b: int):
        gid, recs = t.gid[a:b], t.rec[a:b]
        rel = t.rel[gid]
        label = text.choose(rel, {0: lambda i: text.zpad(gid[i] + 1, 9, "BP"),
                                  1: lambda i: text.zpad(gid[i] - t.n_book_psp + 1, 9, "PB")})
        return text.lines([text.lookup(RELATIONS, rel), label, text.lookup(names, rec.file[recs]),
                           text.integers(rec.ordinal[recs]), text.integers(t.level[gid]),
                           text.lookup(KINDS, t.kind[gid]), fmt_day(t.avail[gid])])

    def build_exc(a: int, b: int):
        recs = t.exc_rec[a:b]
        kinds = np.where(t.exc_kind[a:b] < 0, len(KINDS), t.exc_kind[a:b])
        return text.lines([text.lookup(names, rec.file[recs]), text.integers(rec.ordinal[recs]),
                           text.lookup(REASONS, t.exc_reason[a:b]), fmt_day(t.exc_due[a:b]),
                           text.lookup(KINDS + [""], kinds)])

    with (truth_dir / "groups.csv").open("wb") as fh:
        fh.write(text.header_line(["relation", "group_id", "file_name", "record_ordinal", "expected_level", "kind",
                                   "available_date"]))
        text.write_rows(fh, len(t.rec), build_groups)
    with (truth_dir / "exceptions.csv").open("wb") as fh:
        fh.write(text.header_line(["file_name", "record_ordinal", "reason_code", "due_date", "kind"]))
        text.write_rows(fh, len(t.exc_rec), build_exc)
