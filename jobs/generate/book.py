"""The merchant's book: one file per day of the payments and refunds created that day (UTC).

CSV (quoted only where needed) on most days, JSON Lines on every fifth day (which ones depends on the
seed). Book noise lives here: empty or padded psp_reference, mangled order ids, changed amounts or
currencies, and duplicate rows (later in the same file, or in the next day's file). Written as ERPs and
shops export: some descriptions carry a customer note with line breaks (LF, CRLF), commas and quotes
inside the quoted field (``book_note_rate``), and those files start with a UTF-8 byte order mark.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.generate import noise as nz
from jobs.generate import refs, text
from jobs.generate.dates import DAY, fmt_ts, to_date
from jobs.generate.events import Payments, Refunds, Table, gather
from jobs.generate.ids import digits_from_hash, hash64
from jobs.generate.world import CCYS, EXPS, OFFSET_SECONDS, OFFSETS, PSPS, TenantWorld

FIELDS = ["payment_id", "order_id", "psp", "psp_reference", "type", "amount", "currency", "created_at",
          "customer_email", "description"]
PAYMENT, REFUND = 0, 1
FIRST = ["anna", "bram", "chloe", "daan", "emma", "finn", "gala", "hugo", "iris", "jules", "kim", "lars", "mila",
         "noah", "olga", "pim", "quinn", "rosa", "sam", "tess", "umar", "vera", "wout", "xena", "yara", "zoe"]
LAST = ["jansen", "devries", "bakker", "visser", "smit", "meijer", "mulder", "bos", "vos", "peters", "hendriks",
        "dekker", "brouwer", "dijkstra", "smith", "garcia", "muller", "rossi", "dubois", "nowak"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "post.example"]
NOTES = ["\nNote: leave at reception,\nring twice", '\r\nGift message: "Happy birthday!"\r\n-- Anna',
         "\n\nDeliver after 18:00", '\nSize: 42, colour "navy"']
BOM = b"\xef\xbb\xbf"


@dataclass
class BookRows(Table):
    src: np.ndarray          # PAYMENT / REFUND
    ent: np.ndarray          # index into Payments / Refunds
    day: np.ndarray          # delivery day (file)
    dup: np.ndarray          # a later copy of another row
    key: np.ndarray          # position key within the day's file


def is_jsonl_day(w: TenantWorld, day: int) -> bool:
    return (day + w.salt) % 5 == 0


def file_name(w: TenantWorld, day: int) -> str:
    return f"book_payments_{to_date(day).isoformat()}.{'jsonl' if is_jsonl_day(w, day) else 'csv'}"


def plan(w: TenantWorld, prm: nz.NoiseParams, p: Payments, r: Refunds, days: list[int]) -> BookRows:
    start, end = days[0], days[-1]
    pay = np.flatnonzero(p.kind != nz.MISSING_BOOK)
    rday = r.t // DAY
    ref = np.flatnonzero((rday >= start) & (rday <= end))
    rows = BookRows(src=np.concatenate([np.full(len(pay), PAYMENT), np.full(len(ref), REFUND)]).astype(np.int8),
                    ent=np.concatenate([pay, ref]), day=np.concatenate([p.day[pay], rday[ref]]),
                    dup=np.zeros(len(pay) + len(ref), bool), key=np.concatenate([p.t[pay], r.t[ref]]))
    rng = w.rng(4)
    pick = np.flatnonzero(rng.random(len(rows)) < prm.book_duplicate_rate)
    copies = rows.take(pick)
    copies.dup[:] = True
    next_day = (rng.random(len(pick)) < 0.5) & (copies.day < end)
    copies.day = copies.day + next_day
    copies.key = np.where(next_day, copies.day * DAY + rng.integers(0, DAY, len(pick)),
                          copies.key + rng.integers(1, 4 * 3600, len(pick)))
    rows = BookRows.concat([rows, copies])
    order = np.lexsort((rows.ent, rows.src, rows.dup, rows.key, rows.day))
    return rows.reorder(order)


def _order_text(w: TenantWorld, p: Payments, pay: np.ndarray, mode: np.ndarray) -> pa.Array:
    """The order id as the book prints it: as is, or mangled (modes 1-4), or an unrelated id (5)."""
    order = lambda i: refs.order_ids(p.code[pay[i]])  # noqa: E731
    return text.choose(mode, {
        0: order,
        1: lambda i: pc.utf8_lower(order(i)),
        2: lambda i: text.concat("  ", order(i), " "),
        3: lambda i: text.concat("#", order(i)),
        4: lambda i: text.concat("ORDER ", order(i)),
        5: lambda i: text.zpad(digits_from_hash(hash64(w.salt, "web", p.serial[pay[i]]), 9), 9, "WEB-"),
    })


def _psp_reference(w: TenantWorld, serial, psp, is_ref, no, ref_mode) -> pa.Array:
    """PSP id of the money movement (charge / payment PSP reference, refund id), empty or padded."""
    cat = np.where(ref_mode == 1, -1, psp.astype(np.int64) * 2 + is_ref)
    ids = text.choose(cat, {
        0: lambda i: refs.charge_ids(w.salt, serial[i]),
        2: lambda i: refs.adyen_payment_refs(w.salt, serial[i]),
        1: lambda i: refs.refund_ids(w.salt, serial[i], no[i]),
        3: lambda i: refs.adyen_refund_refs(w.salt, serial[i], no[i]),
        4: lambda i: refs.paypal_txn_ids(w.salt, "pay", serial[i]),
        5: lambda i: refs.paypal_txn_ids(w.salt, "refund", serial[i] * 4 + no[i]),
        6: lambda i: refs.braintree_txn_ids(w.salt, "sale", serial[i]),
        7: lambda i: refs.braintree_txn_ids(w.salt, "credit", serial[i] * 4 + no[i]),
        8: lambda i: refs.checkout_payment_ids(w.salt, serial[i]),
        9: lambda i: refs.checkout_action_ids(w.salt, serial[i] * 4 + no[i]),
        -1: "",
    })
    return text.where(ref_mode == 2, text.concat(" ", ids, "  "), ids) if (ref_mode == 2).any() else ids


def _columns(w: TenantWorld, p: Payments, r: Refunds, rows: BookRows) -> dict[str, pa.Array]:
    is_ref = rows.src == REFUND
    ref = np.where(is_ref, rows.ent, -1)
    pay = np.where(is_ref, gather(r.pay, ref), rows.ent)
    code, serial, psp = p.code[pay], p.serial[pay], p.psp[pay]
    no = gather(r.no, ref)
    mode = np.where(is_ref, 0, p.order_mode[pay])
    order = _order_text(w, p, pay, mode)
    ref_mode = np.where(is_ref, 0, p.ref_mode[pay])
    psp_ref = _psp_reference(w, serial, psp, is_ref, no, ref_mode)
    ccy = np.where(is_ref, p.ccy[pay], p.book_ccy[pay])
    amt = np.where(is_ref, gather(r.amt, ref), p.book_amt[pay])
    t = np.where(is_ref, gather(r.t, ref), p.t[pay])
    tz = p.tz[pay]
    person = p.person[pay]
    email = text.concat(text.lookup(FIRST, person % len(FIRST)), ".", text.lookup(LAST, (person // 32) % len(LAST)),
                        text.zpad((person // 1024) % 100, 2), "@", text.lookup(DOMAINS, (person // 3) % len(DOMAINS)))
    items = text.zpad(1 + person % 5, 1)
    description = text.where(is_ref, text.concat("Refund for order ", order),
                             text.concat("Order ", order, ", ", items, " item(s)"))
    return {
        "payment_id": text.choose(rows.src, {PAYMENT: lambda i: refs.book_payment_ids(code[i]),
                                             REFUND: lambda i: refs.book_refund_ids(code[i], no[i])}),
        "order_id": order,
        "psp": text.lookup(PSPS, psp),
        "psp_reference": psp_ref,
        "type": text.lookup(["payment", "refund"], rows.src),
        "amount": text.amount(amt, EXPS[ccy], signed=False),
        "currency": text.lookup(CCYS, ccy),
        "created_at": text.concat(fmt_ts(t + OFFSET_SECONDS[tz], sep="T"), text.lookup(OFFSETS, tz)),
        "customer_email": email,
        "description": description,
    }


def _with_notes(w: TenantWorld, description: pa.Array, rows: BookRows, rate: float) -> pa.Array:
    """A customer note with line breaks appended to the description of a share ``rate`` of the rows
    (chosen by hash of the row, so a chunk's rows do not depend on the others)."""
    h = hash64(w.salt, "note", rows.ent.astype(np.int64) * 4 + rows.src + 2 * rows.dup)
    noted = (h % np.uint64(10_000)).astype(np.int64) < int(rate * 10_000)
    if not noted.any():
        return description
    note = text.lookup(NOTES, ((h >> np.uint64(20)) % np.uint64(len(NOTES))).astype(np.int64))
    return text.where(noted, text.concat(description, note), description)


def write(path, w: TenantWorld, p: Payments, r: Refunds, rows: BookRows, jsonl: bool, note_rate: float = 0.0) -> None:
    def build(start: int, stop: int) -> pa.Array:
        chunk = rows.rows(start, stop)
        cols = _columns(w, p, r, chunk)
        if jsonl:
            parts: list = []
            for i, name in enumerate(FIELDS):
                parts += [('{"' if i == 0 else '","') + name + '":"', text.json_escape(cols[name])]
            return text.concat(*parts, '"}\n')
        noted = _with_notes(w, cols["description"], chunk, note_rate)
        cols["description"] = text.csv_escape(noted)   # the only field that can hold a comma or a line break
        return text.lines([cols[name] for name in FIELDS])

    with path.open("wb") as fh:
        if not jsonl:
            fh.write((BOM if note_rate > 0 else b"") + text.header_line(FIELDS))
        text.write_rows(fh, len(rows), build)
