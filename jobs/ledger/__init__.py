"""Double-entry ledger: posting rules per canonical event type, balanced journals, chart of accounts."""
