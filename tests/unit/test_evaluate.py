"""The quality scorer knows every file the generator writes: a bank statement of any bank format anchors the
payout_bank relation (bench-quality once scored MT940 and BAI2 days with no payout pairs at all)."""
from jobs.evaluate import role_of
from jobs.generate.core import BANK_WRITERS


def test_every_bank_format_the_generator_writes_is_a_bank_file():
    for fmt, writer in BANK_WRITERS.items():
        assert role_of(writer.file_name(0)) == "bank", fmt
    assert role_of("book_payments_2026-11-20.csv") == "book"
    assert role_of("settlement_detail_report_batch_3146.csv") == "psp"
    assert role_of("stripe_payout_reconciliation_po_1g505i4w40UEj4WQ7ZGA1XD.csv") == "psp"
