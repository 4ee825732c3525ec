"""The DuckDB baseline, in pieces: ``normalise`` (files -> canonical events), ``match`` (dedupe, L1/L2,
payout <-> bank) and ``ledger`` (journal legs). ``bench/baseline_duckdb.py`` runs them in order."""
