"""Deterministic synthetic data: PSP reports, bank statements and the merchant's book, in their real
delivery formats, plus the ground truth of which records belong together (``truth/``).

Entry points: ``generate(...)`` (Python) and ``python -m jobs.generate`` (see ``cli.py``).
Modules: ``world`` (tenant set-up), ``events`` (payments, refunds, chargebacks and per-payment noise),
``stripe`` / ``adyen`` / ``bank`` / ``book`` (what each party records), ``*_file`` and ``book`` (the
writers), ``truth`` (groups and exceptions), ``text`` / ``dates`` / ``ids`` / ``refs`` (vectorised
helpers).
"""
from jobs.generate.core import GenerateReport, generate

__all__ = ["GenerateReport", "generate"]
