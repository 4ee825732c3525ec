"""Parsers: one versioned unit per PSP / bank / book format, all producing the canonical event schema."""
