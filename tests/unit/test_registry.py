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


SAMPLES = Path(__file__).parents[1] / "data" / "samples"
COMPOSED = Path(__file__).parents[1] / "data" / "formats"
EXPECTED = {
    "camt053/camt053.v2.minimal.xml": "bank.camt053", "camt053/camt053.v4.xml": "bank.camt053",
    "camt053/camt053.v8.xml": "bank.camt053", "mt940/betterplace-sepa_mt9401.sta": "bank.mt940",
    "mt940/jejik-abnamro.sta": "bank.mt940", "mt940/jejik-rabobank.sta": "bank.mt940",
    "mt940/jejik-triodos.sta": "bank.mt940", "mt940/cmxl-mt940.sta": "bank.mt940",
    "mt940/self-provided-gv_codes.sta": "bank.mt940", "bai2/sample1.txt": "bank.bai2", "bai2/sample2.txt": "bank.bai2",
    "stripe/event_external_account_bank_account_created.json": "stripe.events",
}
COMPOSED_EXPECTED = {
    "paypal/STL-20240610.01.009.CSV": "paypal.stl", "paypal/TRR-20240610.01.008.CSV": "paypal.trr",
    "braintree/transaction_search_2024-06-10.csv": "braintree.transactions",
    "checkout/settlement-breakdown_ent_acme_20240611_0000000K3P9Q_1.csv": "checkout.settlement_breakdown",
    "checkout/payouts_ent_acme_20240611_20240612_1.csv": "checkout.payouts",
    "stripe/balance_history_2024-06.csv": "stripe.balance_history",
    "stripe/balance_report_payouts_itemized.csv": "stripe.balance_report_itemized",
    "adyen/settlement_detail_report_batch_412.csv": "adyen.settlement_details",
    "mt940/psp_payouts.sta": "bank.mt940", "bai2/psp_payouts.bai": "bank.bai2",
}


def test_every_sample_and_composed_file_is_recognised_by_content_whatever_its_name():
    for folder, expected in ((SAMPLES, EXPECTED), (COMPOSED, COMPOSED_EXPECTED)):
        for rel, format_id in expected.items():
            head = (folder / rel).read_bytes()[:65536]
            assert detect(head).format_id == format_id, rel
            assert detect(BOM + head if not head.startswith(BOM) and head[:1] != b"<" else head).format_id == format_id


def test_dj_stripe_api_objects_and_a_lone_statement_line_are_not_guessed():
    for rel in ("stripe/charge_ch_fakefakefakefakefake0001.json", "stripe/payout_custom_bank_account.json",
                "mt940/cmxl-statement_line.sta"):
        assert detect((SAMPLES / rel).read_bytes()) is None, rel


def test_paypal_files_starting_with_a_section_header_and_bai2_on_one_line():
    stl = (COMPOSED / "paypal" / "STL-20240610.01.009.CSV").read_text().splitlines()
    assert detect("\n".join(stl[2:]).encode()).format_id == "paypal.stl"          # no RH/FH (SmashPig style)
    upper = [line.upper() if line.startswith('"CH"') or line.startswith("CH,") else line for line in stl]
    assert detect("\n".join(upper).encode()).format_id == "paypal.stl"            # column names in any case
    trr = (COMPOSED / "paypal" / "TRR-20240610.01.008.CSV").read_text().splitlines()
    assert detect("\n".join('"CH",' + line[5:].lower() if line.startswith('"CH"') else line for line in trr).encode()
                  ).format_id == "paypal.trr"
    one_line = (COMPOSED / "bai2" / "psp_payouts.bai").read_text().replace("/\n", "/ ", 2)
    assert detect(one_line.encode()).format_id == "bank.bai2"


def test_a_header_two_sniffers_claim_is_unknown():
    both = b"payment_id,order_id,psp,psp_reference,type,amount,currency,created_at,balance_transaction_id," \
           b"reporting_category,automatic_payout_id\n"
    assert detect(both) is None


def test_workbooks_are_recognised_as_xlsx(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["anything"])
    wb.save(tmp_path / "x.bin")
    assert detect((tmp_path / "x.bin").read_bytes()[:65536]).format_id == "tabular.xlsx"
    assert detect(b"PK\x03\x04not a workbook") is None


def test_mt940_whose_first_tag_shares_the_block_4_line_and_csv_headers_in_any_case_or_separator():
    mt940 = (b"{1:F01ABNANL2AAXXX0000000000}{2:O9401200NDEAFIHHXXXX}{4::20:STARTUMS\r\n:25:DE1234/5678\r\n"
             b":28C:1/1\r\n:60F:C261120EUR100,00\r\n:62F:C261120EUR100,00\r\n-}")
    assert detect(mt940).format_id == "bank.mt940"
    header = "Payment Id;ORDER_ID;Psp; psp reference ;Type;Amount;Currency;Created At;Customer Email;Description\r\n"
    assert detect(b"\xef\xbb\xbf" + header.encode()).format_id == "book.csv"
    assert detect(header.replace(";", ",").encode()).format_id == "book.csv"
