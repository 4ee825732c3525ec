"""Format detection is by content, never by file name; ambiguity and unknown content are not guessed."""
from pathlib import Path

from jobs.formats.registry import BOM, detect

DATA = Path(__file__).parents[1] / "data" / "slice"


def _head(name: str) -> bytes:
    return (DATA / name).read_bytes()[:65536]


def test_each_slice_file_is_recognised_by_content():
    assert detect(_head("book_payments_2026-11-19.csv")).format_id == "book.csv"
    assert detect(_head("stripe_payout_po_TEST1.csv")).format_id == "stripe.payout_reconciliation_itemized"
    assert detect(_head("settlement_detail_report_batch_7.csv")).format_id == "adyen.settlement_details"
    assert detect(_head("camt053_2026-11-20.xml")).format_id == "bank.camt053"


def test_byte_order_mark_and_unquoted_api_style_header_are_recognised():
    api = b"balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,automatic_payout_id\n"
    assert detect(BOM + api).format_id == "stripe.payout_reconciliation_itemized"


def test_json_lines_book_records_are_recognised():
    line = (b'{"payment_id":"P1","order_id":"O1","psp":"stripe","psp_reference":"ch_1","type":"payment",'
            b'"amount":"1.00","currency":"EUR","created_at":"2026-01-01T00:00:00+00:00"}\n')
    assert detect(line).format_id == "book.jsonl"


def test_unknown_content_is_not_guessed():
    assert detect(b"hello,world\n1,2\n") is None
    assert detect(b"\x00\x01binary") is None
    assert detect(b"") is None
