"""The CSV shape scan (``jobs.formats.csvread.scan``) decides whether a file may be read line by line
(split across tasks) or must be read by the multi-line reader. Wrong "no" would split records silently,
so it is checked against Python's csv module on hypothesis-drawn files, with chunks as small as a few
bytes so that every quote and line break falls on a chunk boundary somewhere."""
from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.formats.csvread import scan

CELL = st.lists(st.sampled_from(["a", "b", "1", " ", ",", '"', "\n", "\r", "\r\n", "é"]), max_size=6).map("".join)


def _written(rows: list[list[str]], eol: str, quote_all: bool, bom: bool) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=eol, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


@settings(max_examples=400, deadline=None)
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=4), min_size=1, max_size=6),
       eol=st.sampled_from(["\n", "\r\n", "\r"]), quote_all=st.booleans(), bom=st.booleans(),
       chunk=st.sampled_from([1, 2, 3, 7, 64, 1 << 20]))
def test_a_line_break_inside_a_field_is_found_wherever_chunks_split_the_file(rows, eol, quote_all, bom, chunk):
    data = _written(rows, eol, quote_all, bom)
    # as Python's reader reads the file back (its writer leaves a lone CR unquoted under an LF line end)
    read = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    has_break = any("\n" in cell or "\r" in cell for row in read for cell in row)
    shape = scan(io.BytesIO(data), chunk_size=chunk)
    assert shape.multiline == has_break
    assert shape.size == (None if has_break else len(data))


def test_a_quote_inside_an_unquoted_field_sends_the_file_to_the_multiline_reader():
    # after a stray quote, parity no longer says where records end: "5" screen" followed by a quoted
    # line break two records later would look like a record boundary inside the quotes
    data = b'id,text\n1,5" screen\n2,"a\nb"\n3,x\n'
    assert scan(io.BytesIO(data)).multiline
    assert [r for r in csv.reader(io.StringIO(data.decode(), newline=""))][1] == ["1", '5" screen']


def test_plain_quoted_fields_stay_on_the_split_reader():
    data = b'\xef\xbb\xbf"id","text"\r\n"1","say ""hi"", twice"\r\n2,""\r\n'
    assert not scan(io.BytesIO(data), chunk_size=5).multiline
