"""SAP: an IDoc-style flat file of ACC_DOCUMENT (message type ACC_DOCUMENT, basic type ACC_DOCUMENT05),
the inbound interface of BAPI_ACC_DOCUMENT_POST, for G/L postings (FI documents).

We chose the IDoc structure over the FB01 batch-input file (RFBIBL00 with BGR00/BBKPF/BBSEG): the
batch-input records are fixed-width images of Data Dictionary structures whose lengths depend on the
release, while the ACC_DOCUMENT segments are BAPI structures with stable field names, which an
inbound mapping (SAP Integration Suite / PI, or an LSMW "IDoc" object) reads by name.

Layout: UTF-8 text, one record per line, fields separated by TAB, the first field is the record
name; per document: one control record, one header segment, then one G/L item segment per line,
then one currency segment per line (segment order of the IDoc type):

    EDI_DC40    DOCNUM  IDOCTYP  MESTYP  SNDPRN  RCVPRN
    E1BPACHE09  USERNAME  HEADER_TXT  COMP_CODE  DOC_DATE  PSTNG_DATE  DOC_TYPE  REF_DOC_NO
    E1BPACGL09  ITEMNO_ACC  GL_ACCOUNT  ITEM_TEXT  ALLOC_NMBR
    E1BPACCR09  ITEMNO_ACC  CURR_TYPE  CURRENCY  AMT_DOCCUR

* dates YYYYMMDD (SAP's DATS); ITEMNO_ACC NUMC 10 with leading zeros; GL_ACCOUNT CHAR 10 with
  leading zeros when numeric (ALPHA conversion); REF_DOC_NO (16) our document number, HEADER_TXT (25),
  ITEM_TEXT (50), ALLOC_NMBR (18, the journal id's start, for tracing back);
* CURR_TYPE 00 (document currency); AMT_DOCCUR signed decimal with '.' and the currency's decimals,
  debit positive, credit negative (the BAPI's convention; the items of a document sum to zero).

Source: the BAPI_ACC_DOCUMENT_POST structures BAPIACHE09 (header), BAPIACGL09 (G/L account item) and
BAPIACCR09 (currency item), carried by IDoc segments E1BPACHE09 / E1BPACGL09 / E1BPACCR09 of
ACC_DOCUMENT; configuration: ``erp.sap.company_code``, ``document_type`` (default SA), ``username``,
``sender`` / ``receiver`` partner numbers (logical systems).
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.ledger.erp.documents import ErpExportError
from jobs.ledger.erp.text import amount, clean, cut, minor_of, parse_amount, rendered

LAYOUT = "sap.acc_document05_idoc_flat.v1"
FILE_SUFFIX = "txt"
LINE_SEPARATOR = "\n"
SEGMENTS = {
    "EDI_DC40": ["DOCNUM", "IDOCTYP", "MESTYP", "SNDPRN", "RCVPRN"],
    "E1BPACHE09": ["USERNAME", "HEADER_TXT", "COMP_CODE", "DOC_DATE", "PSTNG_DATE", "DOC_TYPE", "REF_DOC_NO"],
    "E1BPACGL09": ["ITEMNO_ACC", "GL_ACCOUNT", "ITEM_TEXT", "ALLOC_NMBR"],
    "E1BPACCR09": ["ITEMNO_ACC", "CURR_TYPE", "CURRENCY", "AMT_DOCCUR"],
}


def account_code(code: Column) -> Column:
    """GL_ACCOUNT as SAP's ALPHA conversion stores it: a numeric account with leading zeros to 10."""
    return F.when(code.rlike("^[0-9]{1,9}$"), F.lpad(code, 10, "0")).otherwise(code)


def header(conf: dict) -> None:
    return None


def problems(lines: DataFrame, conf: dict) -> Column:
    if not conf.get("company_code"):
        raise ErpExportError("erp.sap.company_code is required for the SAP export")
    return F.lit(None).cast("string")


def _record(name: str, *values: Column) -> Column:
    if len(values) != len(SEGMENTS[name]):
        raise AssertionError(f"{name} takes {len(SEGMENTS[name])} fields")
    return F.concat_ws("\t", F.lit(name), *[F.replace(v, F.lit("\t"), F.lit(" ")) for v in values])


def _item() -> Column:
    return F.lpad(F.col("line_no").cast("string"), 10, "0")


def record_count(documents: int, lines: int) -> int:
    """Records (lines of text after the header) of a file with these documents and lines."""
    return 2 * documents + 2 * lines


def records(lines: DataFrame, conf: dict) -> DataFrame:
    """Per document a control record and a header segment (from its first line), then a G/L item and a
    currency item per line."""
    lit, day, item = F.lit, F.date_format("posting_date", "yyyyMMdd"), _item()
    first = lines.filter(F.col("line_no") == 1)
    parts = [
        rendered(first, _record("EDI_DC40", F.col("doc_no"), lit("ACC_DOCUMENT05"), lit("ACC_DOCUMENT"),
                                lit(conf.get("sender", "PSPRECON")), lit(conf.get("receiver", ""))), 0),
        rendered(first, _record("E1BPACHE09", clean(lit(conf.get("username", "PSPRECON")), 12),
                                cut(F.col("doc_memo"), 25), lit(conf.get("company_code")), day, day,
                                lit(conf.get("document_type", "SA")), F.col("doc_no")), 1),
        rendered(lines, _record("E1BPACGL09", item, account_code(F.col("account_code")), cut(F.col("line_memo"), 50),
                                F.substring("journal_id", 1, 18)), 2),
        rendered(lines, _record("E1BPACCR09", item, lit("00"), F.col("currency"),
                                amount(F.col("debit_minor") - F.col("credit_minor"), F.col("exp"))), 3),
    ]
    return parts[0].unionByName(parts[1]).unionByName(parts[2]).unionByName(parts[3])


def check(conf: dict) -> Column:
    """A record split back into its fields: its segment's field count and name, and its line's values."""
    fields, part = F.split(F.col("text"), "\t"), F.col("part")
    name = F.element_at(F.array(*[F.lit(n) for n in SEGMENTS]), part + 1)
    size = F.element_at(F.array(*[F.lit(len(v) + 1) for v in SEGMENTS.values()]), part + 1)
    values = (F.when(part == 0, fields[1] == F.col("doc_no"))
              .when(part == 1, (F.to_date(fields[5], "yyyyMMdd") == F.col("posting_date")) & (fields[7] == F.col("doc_no")))
              .when(part == 2, (fields[1] == _item()) & (fields[2] == account_code(F.col("account_code"))))
              .otherwise((fields[1] == _item()) & (fields[3] == F.col("currency"))
                         & (minor_of(fields[4], F.col("exp")) == F.col("debit_minor") - F.col("credit_minor"))))
    return (F.size(fields) == size) & (fields[0] == name) & values


def parse(data: bytes, conf: dict) -> list[dict]:
    docs: list[dict] = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        name, *values = line.split("\t")
        if name not in SEGMENTS or len(values) != len(SEGMENTS[name]):
            raise ErpExportError(f"SAP file line {n}: unknown record or wrong field count: {line[:60]!r}")
        rec = dict(zip(SEGMENTS[name], values))
        if name == "EDI_DC40":
            docs.append({"doc_no": rec["DOCNUM"], "accounts": {}, "lines": []})
        elif name == "E1BPACHE09":
            docs[-1]["date"] = datetime.strptime(rec["PSTNG_DATE"], "%Y%m%d").date()
        elif name == "E1BPACGL09":
            docs[-1]["accounts"][rec["ITEMNO_ACC"]] = rec["GL_ACCOUNT"]
        else:
            docs[-1]["currency"] = rec["CURRENCY"]
            value = parse_amount(rec["AMT_DOCCUR"], rec["CURRENCY"])
            docs[-1]["lines"].append((docs[-1]["accounts"][rec["ITEMNO_ACC"]], max(value, 0), max(-value, 0)))
    return docs
