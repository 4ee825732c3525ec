"""Bank: ISO 20022 camt.053 (BankToCustomerStatement), versions 001.02 to 001.08.

Spark 3.5 has no native XML reader and statements are small (one entry per bank movement, not per
card payment), so each file is parsed on the driver with lxml (namespace-agnostic, by local name) and
turned into a DataFrame. One canonical event per ``Ntry`` (record ordinal = position of the ``Ntry``
among all entries of the file, in document order). Amounts are positive with ``CdtDbtInd``; a
reversal (``RvslInd`` true) flips the direction. Control total per statement: opening booked balance
+ credits - debits = closing booked balance; a file that does not add up is held back whole.
"""
from __future__ import annotations

import io
from datetime import date, datetime, timezone
from decimal import Decimal

from lxml import etree
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (BooleanType, DateType, IntegerType, LongType, StringType, StructField, StructType,
                               TimestampType)

from jobs import storage
from jobs.formats import common as c
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.money import MoneyError, to_minor
from jobs.settings import Settings

ROW_SCHEMA = StructType([
    StructField("file_sha256", StringType()), StructField("file_name", StringType()),
    StructField("record_ordinal", IntegerType()), StructField("_raw", StringType()),
    StructField("_error", StringType()), StructField("_error_detail", StringType()),
    StructField("_malformed", BooleanType()),
    StructField("event_type", StringType()), StructField("amount_minor", LongType()),
    StructField("currency", StringType()), StructField("bank_ref", StringType()),
    StructField("bank_text", StringType()), StructField("account_ref", StringType()),
    StructField("booked_at", TimestampType()), StructField("booked_tz", StringType()),
    StructField("value_date", DateType()), StructField("payment_method", StringType()),
])
TOTALS_SCHEMA = StructType([StructField("file_sha256", StringType()), StructField("control_totals_ok", BooleanType()),
                            StructField("detail", StringType())])


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


def _all_texts(el, name: str) -> list[str]:
    return [n.text.strip() for n in el.iter() if _local(n.tag) == name and n.text and n.text.strip()]


def _booking_time(entry) -> tuple[datetime | None, str | None]:
    dt = _text(entry, "BookgDt", "DtTm")
    if dt:
        parsed = datetime.fromisoformat(dt.replace("Z", "+00:00"))
        tz = parsed.strftime("%z") if parsed.tzinfo else None
        parsed = parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        return parsed.replace(tzinfo=None), tz
    d = _text(entry, "BookgDt", "Dt")
    return (datetime.fromisoformat(d[:10]) if d else None), None


def _balance(stmt, code: str) -> tuple[int | None, str | None]:
    for bal in _children(stmt, "Bal"):
        if _text(bal, "Tp", "CdOrPrtry", "Cd") == code:
            amt = _child(bal, "Amt")
            ccy = amt.get("Ccy")
            sign = -1 if _text(bal, "CdtDbtInd") == "DBIT" else 1
            return sign * to_minor(amt.text.strip(), ccy), ccy
    return None, None


def parse_file(data: bytes, f: LandedFile) -> tuple[list[dict], dict]:
    rows: list[dict] = []
    problems: list[str] = []
    root = etree.parse(io.BytesIO(data), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    ordinal = 0
    totals_ok: bool | None = True
    for stmt in root.iter():
        if _local(stmt.tag) != "Stmt":
            continue
        account = _text(stmt, "Acct", "Id", "IBAN") or _text(stmt, "Acct", "Id", "Othr", "Id")
        acct_ccy = _text(stmt, "Acct", "Ccy")
        movement = 0
        for entry in _children(stmt, "Ntry"):
            ordinal += 1
            row = {"file_sha256": f.sha256, "file_name": f.file_name, "record_ordinal": ordinal,
                   "_raw": etree.tostring(entry, encoding="unicode")[:4000], "_error": None, "_error_detail": None,
                   "_malformed": False, "account_ref": account, "payment_method": None}
            amt = _child(entry, "Amt")
            try:
                if amt is None or not (amt.text or "").strip():
                    raise MoneyError("entry has no Amt")
                ccy = (amt.get("Ccy") or acct_ccy or "").upper()
                minor = to_minor(amt.text.strip(), ccy)
            except MoneyError as exc:
                row.update(_error=c.UNKNOWN_CURRENCY if "currency" in str(exc) else c.BAD_AMOUNT,
                           _error_detail=str(exc), event_type="bank_credit", amount_minor=0, currency=None)
                totals_ok = None
                rows.append(row)
                continue
            credit = _text(entry, "CdtDbtInd") == "CRDT"
            if (_text(entry, "RvslInd") or "").lower() == "true":
                credit = not credit
            signed = minor if credit else -minor
            movement += signed
            booked_at, tz = _booking_time(entry)
            refs = _all_texts(entry, "EndToEndId") + _all_texts(entry, "Ustrd") + _all_texts(entry, "Ref") \
                + _all_texts(entry, "AddtlNtryInf") + _all_texts(entry, "AddtlTxInf")
            value = _text(entry, "ValDt", "Dt") or _text(entry, "ValDt", "DtTm")
            row.update(
                event_type="bank_credit" if credit else "bank_debit", amount_minor=signed, currency=ccy,
                bank_ref=_text(entry, "AcctSvcrRef") or _text(entry, "NtryRef"),
                bank_text=" | ".join(dict.fromkeys(refs)) or None,
                booked_at=booked_at, booked_tz=tz,
                value_date=date.fromisoformat(value[:10]) if value else None,
                payment_method="/".join(filter(None, [_text(entry, "BkTxCd", "Domn", "Cd"),
                                                      _text(entry, "BkTxCd", "Domn", "Fmly", "Cd"),
                                                      _text(entry, "BkTxCd", "Domn", "Fmly", "SubFmlyCd")])) or None,
            )
            if booked_at is None:
                row.update(_error=c.BAD_TIMESTAMP, _error_detail="entry has no BookgDt")
            rows.append(row)
        opening, _ = _balance(stmt, "OPBD")
        closing, _ = _balance(stmt, "CLBD")
        if opening is None or closing is None:
            totals_ok = None if totals_ok is not False else False
            problems.append(f"statement {_text(stmt, 'Id')}: no OPBD/CLBD balance pair")
        elif opening + movement != closing:
            totals_ok = False
            problems.append(f"statement {_text(stmt, 'Id')}: opening {opening} + entries {movement} != closing {closing}")
    if ordinal == 0 and not problems:
        problems.append("no entries")
    return rows, {"file_sha256": f.sha256, "control_totals_ok": totals_ok, "detail": "; ".join(problems) or None}


def parse_camt053(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                  ctx: c.ParseContext) -> c.ParseOutput:
    all_rows, totals, rejected = [], [], {}
    for f in files:
        try:
            rows, total = parse_file(storage.read_bytes(settings, f.raw_uri), f)
        except (etree.XMLSyntaxError, ValueError) as exc:
            rejected[f.sha256] = (c.MALFORMED_ROW, f"not a readable camt.053 document: {exc}")
            continue
        if total["control_totals_ok"] is False:
            rejected[f.sha256] = (c.CONTROL_TOTAL_MISMATCH, total["detail"])
            continue
        all_rows.extend(rows)
        totals.append(total)
    df = spark.createDataFrame(all_rows, ROW_SCHEMA)
    parsed = df.withColumn("psp", F.lit(None).cast("string")) \
               .withColumn("fee_minor", F.lit(0).cast("long")) \
               .withColumn("net_minor", F.col("amount_minor"))
    return c.finish(parsed, spec, ctx, extra_stats=spark.createDataFrame(totals, TOTALS_SCHEMA), rejected=rejected)
