"""ERP documents: the journals of a business date as the entries an ERP imports.

An ERP journal entry has one currency (NetSuite's ``currency`` body field, SAP's document currency,
QuickBooks' journal currency), so each journal becomes one document per currency; ours are balanced
per currency, so every document balances on its own. Documents are numbered ``PR<yymmdd>-<nnnnnn>``
(15 characters: fits SAP's REF_DOC_NO (16) and QuickBooks' Journal No. (21)) in journal-id order,
deterministic for a given set of journals. Our account keys become ERP account codes through the
tenant's mapping (``erp.<erp>.accounts``: key -> code, or key -> {psp: code, "*": code}); a key
without a mapping is an error naming the tenant, ERP, key and PSP.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from jobs.settings import ConfigurationError


class ErpExportError(RuntimeError):
    pass


@dataclass(frozen=True)
class ErpLine:
    line_no: int
    account_key: str
    psp: str | None
    account: str            # our account text
    debit_minor: int
    credit_minor: int
    memo: str
    account_code: str = ""  # the ERP's account, after mapping


@dataclass(frozen=True)
class ErpDocument:
    journal_id: str
    currency: str
    posting_date: date
    journal_type: str
    memo: str
    lines: tuple[ErpLine, ...]
    doc_no: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.journal_id, self.currency

    def totals(self) -> tuple[int, int]:
        return sum(x.debit_minor for x in self.lines), sum(x.credit_minor for x in self.lines)


def build(rows, business_date: date) -> list[ErpDocument]:
    """``rows``: journal lines (dicts or Rows) ordered by journal_id, currency, entry_no."""
    docs: list[ErpDocument] = []
    current: list[ErpLine] = []
    head = None
    for r in rows:
        key = (r["journal_id"], r["currency"])
        if head is None or key != head[0]:
            if head is not None:
                docs.append(_doc(head, current))
            head, current = (key, r), []
        memo = " ".join(x for x in (r["memo"], r["component"]) if x)
        current.append(ErpLine(len(current) + 1, r["account_key"] or "", r["psp"], r["account"], int(r["debit_minor"]),
                               int(r["credit_minor"]), memo))
    if head is not None:
        docs.append(_doc(head, current))
    for doc in docs:
        debit, credit = doc.totals()
        if debit != credit:
            raise ErpExportError(f"journal {doc.journal_id} ({doc.currency}) of {business_date} is not balanced: "
                                 f"debit {debit} credit {credit}")
    return docs


def _doc(head, lines: list[ErpLine]) -> ErpDocument:
    (journal_id, currency), r = head
    return ErpDocument(journal_id, currency, r["posting_date"] or r["business_date"], r["journal_type"],
                       r["memo"] or r["journal_type"], tuple(lines))


def number(docs: list[ErpDocument], business_date: date, first_seq: int) -> list[ErpDocument]:
    prefix = f"PR{business_date:%y%m%d}-"
    return [replace(d, doc_no=f"{prefix}{first_seq + i:06d}") for i, d in enumerate(docs)]


def map_accounts(docs: list[ErpDocument], mapping: dict, tenant: str, erp: str) -> list[ErpDocument]:
    missing: set[str] = set()

    def code(line: ErpLine) -> str:
        entry = mapping.get(line.account_key, mapping.get(line.account_key.split(".", 1)[0]))
        if isinstance(entry, dict):
            entry = entry.get(line.psp or "*", entry.get("*"))
        if entry is None or not str(entry).strip():
            missing.add(f"{line.account_key} (psp {line.psp or '-'})")
            return ""
        return str(entry)

    out = [replace(d, lines=tuple(replace(x, account_code=code(x)) for x in d.lines)) for d in docs]
    if missing:
        raise ConfigurationError(f"tenant {tenant}: erp.{erp}.accounts has no account for "
                                 f"{', '.join(sorted(missing))}")
    return out
