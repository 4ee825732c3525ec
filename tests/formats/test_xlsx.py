"""XLSX: any tabular format delivered as a workbook is read through its own parser, values as Excel shows
them (shared strings, numbers, dates by number format), with the same events as the CSV delivery."""
from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest

from conftest import DATA
from formats.conftest import files

SLICE = DATA / "slice"


def workbook_from_csv(src: Path, dst: Path, typed: bool = True) -> None:
    """The CSV as Excel would hold it: numbers as numbers, timestamps as date cells."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for i, row in enumerate(csv.reader(src.open())):
        values = []
        for v in row:
            if typed and i and len(v) == 19 and v[4] == "-" and v[10] == " ":
                values.append(datetime.fromisoformat(v))
            elif typed and i and v.replace(".", "", 1).isdigit():
                values.append(float(v) if "." in v else int(v))
            else:
                values.append(v if v != "" else None)
        ws.append(values)
    wb.save(dst)


def test_sheet_to_csv_keeps_values_as_excel_shows_them(tmp_path):
    from openpyxl import Workbook

    from jobs.formats.xlsx import to_csv

    wb = Workbook()
    ws = wb.active
    ws.append(["id", "amount", "when", "flag", "note"])
    ws.append(["a1", 0.1 + 0.2, datetime(2026, 11, 18, 15, 0, 5), True, "x, y"])
    ws.append(["a2", 10.0, None, None, None])                  # trailing empty cells are not stored
    ws.append([None, None, None, None, None])                  # an empty row
    ws.append(["a3", 12345678901234567890, datetime(2026, 1, 2), False, "ok"])
    wb.save(tmp_path / "book.xlsx")
    lines = to_csv((tmp_path / "book.xlsx").read_bytes()).decode().splitlines()
    assert lines == ["id,amount,when,flag,note", 'a1,0.3,2026-11-18 15:00:05,TRUE,"x, y"', "a2,10,,,",
                     "a3,1.234567890123457e+19,2026-01-02 00:00:00,FALSE,ok"]   # as stored


@files
def workbooks(work: Path) -> list[Path]:
    from openpyxl import Workbook

    adyen_xlsx, book_xlsx, unknown = work / "sdr_batch_7.xlsx", work / "book.xlsx", work / "unknown.xlsx"
    workbook_from_csv(SLICE / "settlement_detail_report_batch_7.csv", adyen_xlsx)
    workbook_from_csv(SLICE / "book_payments_2026-11-19.csv", book_xlsx, typed=False)
    wb = Workbook()
    wb.active.append(["hello", "world"])
    wb.active.append([1, 2])
    wb.save(unknown)
    return [adyen_xlsx, book_xlsx, unknown, SLICE / "settlement_detail_report_batch_7.csv"]


@pytest.mark.spark
def test_adyen_and_book_workbooks_parse_like_their_csv(formats_run):
    out = formats_run
    key = lambda e: (e.record_ordinal, e.event_type, e.amount_minor, e.fee_minor, e.net_minor, e.currency,  # noqa
                     e.presentment_amount_minor, e.psp_ref, e.payout_ref, e.booked_at)
    from_xlsx = out.of("sdr_batch_7.xlsx")
    assert len(from_xlsx) == 5
    assert [key(e) for e in from_xlsx] == [key(e) for e in out.of("settlement_detail_report_batch_7.csv")]
    assert {e.format for e in from_xlsx} == {"adyen.settlement_details.xlsx"}
    assert out.landed["sdr_batch_7.xlsx"] == "tabular.xlsx"
    assert out.stats["sdr_batch_7.xlsx"].control_totals_ok is True
    assert len(out.of("book.xlsx")) == 7 and out.reasons("book.xlsx") == {8: "AMOUNT_PRECISION"}
    assert out.rejected["unknown.xlsx"][0] == "UNKNOWN_FORMAT"
