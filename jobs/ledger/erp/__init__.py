"""ERP exports of the ledger: NetSuite journal entry CSV, SAP ACC_DOCUMENT IDoc-style flat file,
QuickBooks Online journal entry CSV (layouts and sources in each module's docstring)."""
from __future__ import annotations

from types import ModuleType

ERPS = ("netsuite", "sap", "quickbooks")


def writer(erp: str) -> ModuleType:
    """The module of a layout: ``LAYOUT``, ``FILE_SUFFIX``, ``LINE_SEPARATOR``, ``header(conf)`` (the
    first line, or None), ``problems(lines, conf)`` (why a document line cannot be written, as a
    column), ``records(lines, conf)`` (the file's records, ordered by doc_seq, part, line_no),
    ``check(conf)`` (a record read back gives its line's values), ``record_count(documents, lines)``
    and ``parse(data, conf)`` (a Python reader of a whole file)."""
    if erp not in ERPS:
        raise ValueError(f"unknown ERP {erp!r}; choose one of {', '.join(ERPS)}")
    from importlib import import_module

    return import_module(f"jobs.ledger.erp.{erp}")
