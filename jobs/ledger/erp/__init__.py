"""ERP exports of the ledger: NetSuite journal entry CSV, SAP ACC_DOCUMENT IDoc-style flat file,
QuickBooks Online journal entry CSV (layouts and sources in each module's docstring)."""
from __future__ import annotations

from types import ModuleType

ERPS = ("netsuite", "sap", "quickbooks")


def writer(erp: str) -> ModuleType:
    """The module with ``LAYOUT``, ``FILE_SUFFIX``, ``write(docs, conf)`` and ``parse(data, conf)``."""
    if erp not in ERPS:
        raise ValueError(f"unknown ERP {erp!r}; choose one of {', '.join(ERPS)}")
    from importlib import import_module

    return import_module(f"jobs.ledger.erp.{erp}")
