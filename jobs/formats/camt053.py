"""Bank: ISO 20022 camt.053 (BankToCustomerStatement), versions 001.02 to 001.08 (and later ones that
keep the same element names).

Spark 3.5 has no native XML reader, so each file is streamed on the driver with lxml ``iterparse``
(namespace-agnostic, by local name, so any ``camt.053.001.NN`` namespace or prefix; every entry is cleared
once read, so a statement with a million entries needs little memory) and the rows go to Spark through
Arrow. Several ``Stmt`` per document. One canonical event per ``Ntry``, a batch booking (several
``NtryDtls/TxDtls``) included (record ordinal = position of the ``Ntry`` among all entries of the file,
across statements, in document order, 1-based).

Amounts are positive decimals (``xs:decimal``, no sign, no exponent) with ``CdtDbtInd``, which already
gives the direction of the booking: a reversal (``RvslInd`` true) is booked the other way round by the
bank and its indicator says so. An entry in a withdrawn ISO 4217 currency (DEM, FRF, XEU...) is
quarantined as WITHDRAWN_CURRENCY, one in a code that never existed as UNKNOWN_CURRENCY, an unreadable
amount as BAD_AMOUNT, a booked entry without a readable booking date as BAD_TIMESTAMP; the rest of the
statement goes on. Entries whose status is not booked (``PDNG``/``INFO``; ``Sts`` or, from version 8,
``Sts/Cd``) are read but skipped: no money moved yet. ``bank_text`` gathers the references: every
``EndToEndId`` (but ``NOTPROVIDED``), ``PmtInfId``, ``RmtInf/Ustrd``, the structured ``RmtInf/Strd``
creditor reference, document numbers and additional remittance lines, ``AddtlTxInf`` and
``AddtlNtryInf``. The counterparty's name (``Dbtr`` of a credit, ``Cdtr`` of a debit, also inside the v8
``Pty`` wrapper) is kept only as a keyed hash.

Control total per statement: opening booked balance + booked entries = closing booked balance. A file
that does not add up is held back whole; a statement without the OPBD/CLBD pair, whose balances are in
another currency than its entries, or with a quarantined entry, cannot be verified
(``control_totals_ok`` null, with a detail).
"""
from __future__ import annotations

import io
import re
from collections import Counter
from datetime import date, datetime, timezone

from lxml import etree
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (BooleanType, DateType, IntegerType, LongType, StringType, StructField, StructType,
                               TimestampType)

from jobs import storage
from jobs.formats import common as c
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.money import CURRENCY_EXPONENTS, WITHDRAWN_CURRENCIES, MoneyError, to_minor
from jobs.privacy import hash_pii
from jobs.settings import Settings
from jobs.spark import local_frame

ROW_SCHEMA = StructType([
    StructField("file_sha256", StringType()), StructField("file_name", StringType()),
    StructField("record_ordinal", IntegerType()), StructField("_raw", StringType()),
    StructField("_error", StringType()), StructField("_error_detail", StringType()),
    StructField("_skip", BooleanType()),
    StructField("event_type", StringType()), StructField("amount_minor", LongType()),
    StructField("currency", StringType()), StructField("bank_ref", StringType()),
    StructField("bank_text", StringType()), StructField("account_ref", StringType()),
    StructField("booked_at", TimestampType()), StructField("booked_tz", StringType()),
    StructField("value_date", DateType()), StructField("payment_method", StringType()),
    StructField("_counterparty", StringType()),
])
TOTALS_SCHEMA = StructType([StructField("file_sha256", StringType()), StructField("control_totals_ok", BooleanType()),
                            StructField("detail", StringType())])
RAW_LIMIT = 4000
DECIMAL = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")          # xs:decimal as ISO 20022 amounts use it: no sign
NOT_A_REFERENCE = {"NOTPROVIDED", "NONREF", "NONE"}
TEXT_ELEMENTS = {"EndToEndId", "PmtInfId", "Ustrd", "Ref", "Nb", "AddtlRmtInf", "AddtlTxInf"}


class AmountError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def amount_minor(text: str | None, ccy: str) -> int:
    """An ISO 20022 amount (positive decimal) in ``ccy`` as integer minor units; AmountError names why not."""
    text = (text or "").strip()
    if not text:
        raise AmountError(c.BAD_AMOUNT, "no amount")
    if ccy in WITHDRAWN_CURRENCIES:
        raise AmountError(c.WITHDRAWN_CURRENCY, f"{ccy} is a withdrawn ISO 4217 currency, no longer in use")
    if ccy not in CURRENCY_EXPONENTS:
        raise AmountError(c.UNKNOWN_CURRENCY, f"unknown currency {ccy!r} (not an ISO 4217 code)")
    if not DECIMAL.match(text):
        raise AmountError(c.BAD_AMOUNT, f"not an unsigned decimal amount: {text[:40]!r}")
    try:
        minor = to_minor(text, ccy)
    except MoneyError as exc:
        raise AmountError(c.AMOUNT_PRECISION if "decimals" in str(exc) else c.BAD_AMOUNT, str(exc)) from None
    if minor >= 10 ** c.MAX_MINOR_DIGITS:
        raise AmountError(c.BAD_AMOUNT, f"{text} {ccy} is too large")
    return minor


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child(el, *path: str):
    for name in path:
        if el is None:
            return None
        el = next((ch for ch in el if _local(ch.tag) == name), None)
    return el


def _children(el, name: str):
    return [ch for ch in el if _local(ch.tag) == name] if el is not None else []


def _text(el, *path: str) -> str | None:
    node = _child(el, *path)
    return node.text.strip() if node is not None and node.text and node.text.strip() else None


def _references(entry) -> list[str]:
    """The entry's reference and remittance texts, in document order, then its own additional information."""
    found = [n.text.strip() for n in entry.iter() if _local(n.tag) in TEXT_ELEMENTS and n.text and n.text.strip()]
    found += [n.text.strip() for n in entry if _local(n.tag) == "AddtlNtryInf" and n.text and n.text.strip()]
    return [t for t in found if t.upper() not in NOT_A_REFERENCE]


def _booking_time(entry) -> tuple[datetime | None, str | None]:
    """(UTC booking time, its original offset); (None, None) when there is none or it is unreadable."""
    try:
        dt = _text(entry, "BookgDt", "DtTm")
        if dt:
            parsed = datetime.fromisoformat(dt.replace("Z", "+00:00"))
            tz = parsed.strftime("%z") if parsed.tzinfo else None
            parsed = parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
            return parsed.replace(tzinfo=None), tz
        d = _text(entry, "BookgDt", "Dt")
        return (datetime.fromisoformat(d[:10]) if d else None), None
    except ValueError:
        return None, None


def _value_date(entry) -> date | None:
    value = _text(entry, "ValDt", "Dt") or _text(entry, "ValDt", "DtTm")
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def _counterparty(entry, credit: bool) -> str | None:
    """Name of the other party: the debtor of a credit, the creditor of a debit (first TxDtls)."""
    parties = _child(entry, "NtryDtls", "TxDtls", "RltdPties")
    if parties is None:
        parties = _child(entry, "NtryDtls", "Btch")
    party = _child(parties, "Dbtr" if credit else "Cdtr")
    if party is None:
        return None
    return _text(party, "Nm") or _text(party, "Pty", "Nm")


def _status(entry) -> str:
    return (_text(entry, "Sts") or _text(entry, "Sts", "Cd") or "BOOK").upper()


class _Statement:
    def __init__(self):
        self.stmt_id: str | None = None
        self.account: str | None = None
        self.currency: str | None = None
        self.balances: dict[str, tuple[int, str]] = {}
        self.balance_problem: str | None = None
        self.movement = 0
        self.entry_currencies: set[str] = set()
        self.quarantined: Counter = Counter()

    def add_balance(self, bal) -> None:
        code = _text(bal, "Tp", "CdOrPrtry", "Cd")
        amt = _child(bal, "Amt")
        if code not in ("OPBD", "CLBD", "PRCD") or amt is None:
            return
        ccy = (amt.get("Ccy") or "").strip().upper()
        try:
            minor = amount_minor(amt.text, ccy)
        except AmountError as exc:
            self.balance_problem = f"balance {code}: {exc}"
            return
        sign = -1 if _text(bal, "CdtDbtInd") == "DBIT" else 1
        self.balances.setdefault(code, (sign * minor, ccy))

    def check(self) -> tuple[bool | None, str | None]:
        label = f"statement {self.stmt_id}"
        opening = self.balances.get("OPBD") or self.balances.get("PRCD")
        closing = self.balances.get("CLBD")
        if self.quarantined:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.quarantined.items()))
            return None, f"{label}: entries quarantined ({why}), balances not verifiable"
        if self.balance_problem or opening is None or closing is None:
            return None, f"{label}: {self.balance_problem or 'no OPBD/CLBD balance pair'}"
        currencies = {opening[1], closing[1]} | self.entry_currencies | ({self.currency} if self.currency else set())
        if len(currencies) > 1:
            return None, f"{label}: balances and entries in different currencies ({', '.join(sorted(currencies))})"
        if opening[0] + self.movement != closing[0]:
            return False, (f"{label}: opening {opening[0]} + entries {self.movement} != closing {closing[0]} "
                           f"({closing[1]} minor units)")
        return True, None


def _entry_row(entry, ordinal: int, f: LandedFile, st: _Statement) -> dict:
    row = {"file_sha256": f.sha256, "file_name": f.file_name, "record_ordinal": ordinal, "account_ref": st.account}
    amt = _child(entry, "Amt")
    credit = _text(entry, "CdtDbtInd") == "CRDT"
    ccy = ((amt.get("Ccy") if amt is not None else None) or st.currency or "").strip().upper()
    try:
        minor = amount_minor(amt.text if amt is not None else None, ccy)
    except AmountError as exc:
        st.quarantined[exc.reason] += 1
        return {**row, "_error": exc.reason, "_error_detail": str(exc), "currency": ccy or None,
                "event_type": "bank_credit" if credit else "bank_debit",
                "_raw": etree.tostring(entry, encoding="unicode")[:RAW_LIMIT]}
    signed = minor if credit else -minor       # CdtDbtInd is the booking's direction, reversals included
    booked = _status(entry) == "BOOK"
    booked_at, tz = _booking_time(entry)
    if booked and booked_at is None:
        st.quarantined[c.BAD_TIMESTAMP] += 1
    elif booked:
        st.movement += signed
        st.entry_currencies.add(ccy)
    refs = _references(entry)
    domain = [_text(entry, "BkTxCd", "Domn", "Cd"), _text(entry, "BkTxCd", "Domn", "Fmly", "Cd"),
              _text(entry, "BkTxCd", "Domn", "Fmly", "SubFmlyCd")]
    method = "/".join(filter(None, domain)) or _text(entry, "BkTxCd", "Prtry", "Cd")
    row.update(event_type="bank_credit" if credit else "bank_debit", amount_minor=signed, currency=ccy,
               bank_ref=_text(entry, "AcctSvcrRef") or _text(entry, "NtryRef"),
               bank_text=" | ".join(dict.fromkeys(refs)) or None, booked_at=booked_at, booked_tz=tz,
               value_date=_value_date(entry), payment_method=method,
               _counterparty=_counterparty(entry, credit), _skip=not booked)
    if booked and booked_at is None:
        row.update(_error=c.BAD_TIMESTAMP, _error_detail="booked entry without a readable BookgDt",
                   _raw=etree.tostring(entry, encoding="unicode")[:RAW_LIMIT])
    return row


def parse_statements(data: bytes, f: LandedFile, out: c.DriverRows) -> list[tuple[bool | None, str | None]]:
    """Stream one document's entries into ``out``; returns (balance verdict, problem) per ``Stmt``: True
    adds up, False does not, None cannot be verified."""
    ordinal, results = 0, []
    st: _Statement | None = None
    parser = etree.iterparse(io.BytesIO(data), events=("start", "end"), resolve_entities=False, no_network=True,
                             huge_tree=True)
    for event, el in parser:
        name = _local(el.tag)
        if event == "start":
            if name == "Stmt":
                st = _Statement()
            continue
        if st is None:
            continue
        parent = _local(el.getparent().tag) if el.getparent() is not None else ""
        if name == "Ntry" and parent == "Stmt":
            ordinal += 1
            out.add(**_entry_row(el, ordinal, f, st))
        elif name == "Bal" and parent == "Stmt":
            st.add_balance(el)
        elif name == "Acct" and parent == "Stmt":
            st.account = _text(el, "Id", "IBAN") or _text(el, "Id", "Othr", "Id")
            st.currency = (_text(el, "Ccy") or "").upper() or None
        elif name == "Id" and parent == "Stmt":
            st.stmt_id = (el.text or "").strip()
        elif name == "Stmt":
            results.append(st.check())
            st = None
        else:
            continue
        if parent == "Stmt" or name == "Stmt":
            el.clear(keep_tail=False)
            while el.getprevious() is not None:
                del el.getparent()[0]
    if not results:
        raise ValueError("no Stmt element")
    return results


def parse_file(data: bytes, f: LandedFile, out: c.DriverRows) -> dict:
    """Stream one document into ``out``; returns its control-total row."""
    before = out.count
    results = parse_statements(data, f, out)
    verdicts = [ok for ok, _ in results]
    totals_ok = False if False in verdicts else (None if None in verdicts else True)
    problems = [problem for _, problem in results if problem] + (["no entries"] if out.count == before else [])
    return {"file_sha256": f.sha256, "control_totals_ok": totals_ok, "detail": "; ".join(problems) or None}


def parse_camt053(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                  ctx: c.ParseContext) -> c.ParseOutput:
    out, totals, rejected = c.DriverRows(ROW_SCHEMA), [], {}
    for f in files:
        mark = out.count
        try:
            total = parse_file(storage.read_bytes(settings, f.raw_uri), f, out)
        except (etree.XMLSyntaxError, ValueError) as exc:
            rejected[f.sha256] = (c.MALFORMED_ROW, f"not a readable camt.053 document: {exc}")
            total = None
        if total is not None and total["control_totals_ok"] is False:
            rejected[f.sha256] = (c.CONTROL_TOTAL_MISMATCH, total["detail"])
        if f.sha256 in rejected:
            for values in out.columns.values():      # a file held back whole keeps none of its rows
                del values[mark:]
            out.count = mark
            continue
        totals.append(total)
    parsed = (out.to_df(spark)
              .withColumn("psp", F.lit(None).cast("string"))
              .withColumn("fee_minor", F.lit(0).cast("long"))
              .withColumn("net_minor", F.col("amount_minor"))
              .withColumn("counterparty_name_hash", hash_pii(F.col("_counterparty"), ctx.pii_salt)))
    return c.finish(parsed, spec, ctx, extra_stats=local_frame(spark, totals, TOTALS_SCHEMA), rejected=rejected,
                    files=files)
