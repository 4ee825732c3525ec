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

from jobs.ledger.erp.documents import ErpDocument, ErpExportError
from jobs.ledger.erp.text import amount, clean, parse_amount

LAYOUT = "sap.acc_document05_idoc_flat.v1"
FILE_SUFFIX = "txt"
SEGMENTS = {
    "EDI_DC40": ["DOCNUM", "IDOCTYP", "MESTYP", "SNDPRN", "RCVPRN"],
    "E1BPACHE09": ["USERNAME", "HEADER_TXT", "COMP_CODE", "DOC_DATE", "PSTNG_DATE", "DOC_TYPE", "REF_DOC_NO"],
    "E1BPACGL09": ["ITEMNO_ACC", "GL_ACCOUNT", "ITEM_TEXT", "ALLOC_NMBR"],
    "E1BPACCR09": ["ITEMNO_ACC", "CURR_TYPE", "CURRENCY", "AMT_DOCCUR"],
}


def account_code(code: str) -> str:
    """GL_ACCOUNT as SAP's ALPHA conversion stores it: a numeric account with leading zeros to 10."""
    return code.zfill(10) if code.isdigit() else code


def _record(name: str, *values: str) -> str:
    if len(values) != len(SEGMENTS[name]):
        raise AssertionError(f"{name} takes {len(SEGMENTS[name])} fields")
    return "\t".join([name, *(v.replace("\t", " ") for v in values)])


def write(docs: list[ErpDocument], conf: dict) -> bytes:
    company = conf.get("company_code")
    if not company:
        raise ErpExportError("erp.sap.company_code is required for the SAP export")
    records = []
    for d in docs:
        day = d.posting_date.strftime("%Y%m%d")
        records.append(_record("EDI_DC40", d.doc_no, "ACC_DOCUMENT05", "ACC_DOCUMENT", conf.get("sender", "PSPRECON"),
                               conf.get("receiver", "")))
        records.append(_record("E1BPACHE09", clean(conf.get("username", "PSPRECON"), 12), clean(d.memo, 25),
                               company, day, day, conf.get("document_type", "SA"), d.doc_no))
        for x in d.lines:
            records.append(_record("E1BPACGL09", f"{x.line_no:010d}", account_code(x.account_code), clean(x.memo, 50),
                                   d.journal_id[:18]))
        for x in d.lines:
            records.append(_record("E1BPACCR09", f"{x.line_no:010d}", "00", d.currency,
                                   amount(x.debit_minor - x.credit_minor, d.currency)))
    return ("\n".join(records) + "\n").encode("utf-8")


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
