"""Field formatting shared by the ERP writers, as Spark expressions (the files are rendered by Spark,
one text record per document line, so a day of millions of journal lines never passes through
Python): exact amounts from minor units, clean bounded text, RFC 4180 CSV records, dates; and the
inverse readers the writers use to check every record they render."""
from __future__ import annotations

from decimal import Decimal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.formats.common import pow10
from jobs.money import to_minor

_CONTROL = r"[\x00-\x1f\x7f]+"


def amount(minor: Column, exp: Column) -> Column:
    """Minor units as a plain decimal string with exactly the currency's decimals ('-' for negatives):
    integer arithmetic only (1234, 2 -> '12.34'; 20050, 0 -> '20050'; -5, 2 -> '-0.05')."""
    scale = pow10(exp).cast("long")
    frac = (F.abs(minor) % scale + scale).cast("string").substr(F.lit(2), exp)      # 5, 2 -> "105" -> "05"
    sign = F.when(minor < 0, F.lit("-")).otherwise(F.lit(""))
    return F.when(exp == 0, minor.cast("string")).otherwise(F.concat(sign, _whole(minor, exp), F.lit("."), frac))


def amount_cell(minor: str) -> Column:
    """A debit or credit cell: the amount of column ``minor`` in its currency (``exp``), empty when 0."""
    return F.when(F.col(minor) != 0, amount(F.col(minor), F.col("exp"))).otherwise(F.lit(""))


def _whole(minor: Column, exp: Column) -> Column:
    """The major units of ``minor`` as a digit string (exact: decimal division, never a double)."""
    return F.floor(F.abs(minor).cast("decimal(20,0)") / pow10(exp)).cast("decimal(20,0)").cast("string")


def integer_digits(minor: Column, exp: Column) -> Column:
    """Number of digits before the decimal point of ``amount(minor, exp)``."""
    return F.length(_whole(minor, exp))


def minor_of(text: Column, exp: Column) -> Column:
    """The inverse of ``amount``: a decimal string back to minor units; null when it is not a number
    with at most the currency's decimals (an empty cell is 0)."""
    cell = F.coalesce(text, F.lit(""))
    scaled = cell.cast("decimal(38,9)") * pow10(exp)
    return (F.when(cell == "", F.lit(0).cast("long"))
            .when(cell.rlike(r"^-?[0-9]+(\.[0-9]+)?$") & (scaled == F.floor(scaled)), scaled.cast("long")))


def clean(text: Column, max_length: int | None = None) -> Column:
    """One line of text: each run of control characters (tabs and line breaks too) becomes one space,
    spaces around it are trimmed, then it is cut to ``max_length``. One regular expression; the trim
    is ``trim`` (ASCII spaces), the only blanks left once control characters are spaces."""
    one_line = F.trim(F.regexp_replace(F.coalesce(text, F.lit("")), _CONTROL, " "))
    return one_line if max_length is None else cut(one_line, max_length)


def cut(text: Column, max_length: int) -> Column:
    """Text cut to ``max_length`` characters (a document line's memos are clean already: ``day_lines``)."""
    return F.substring(text, 1, max_length)


def csv_field(value: Column) -> Column:
    """A CSV field as Python's csv writer (QUOTE_MINIMAL) writes it: quoted, with quotes doubled, when
    it holds a comma, a quote or a line break (four ``contains``: a third of a regular expression's cost)."""
    v = F.coalesce(value.cast("string"), F.lit(""))
    special = v.contains('"') | v.contains(",") | v.contains("\r") | v.contains("\n")
    return F.when(special, F.concat(F.lit('"'), F.replace(v, F.lit('"'), F.lit('""')), F.lit('"'))).otherwise(v)


def csv_record(values: list[Column]) -> Column:
    return F.concat_ws(",", *[csv_field(v) for v in values])


def csv_cells(record: Column, n: int) -> Column:
    """The cells of a CSV record read back with Spark's CSV parser (an independent reader): a struct
    c0..c<n-1> of strings, an empty cell null."""
    schema = ", ".join(f"c{i} string" for i in range(n))
    return F.from_csv(record, schema, {"quote": '"', "escape": '"'})


_DIRECTIVES = {"d": "dd", "m": "MM", "Y": "yyyy", "y": "yy", "b": "MMM", "j": "DDD"}


def spark_date_pattern(python_format: str) -> str:
    """A strftime date format (``erp.netsuite.date_format``) as Spark's datetime pattern."""
    out, i = [], 0
    while i < len(python_format):
        ch = python_format[i]
        if ch == "%":
            d = python_format[i + 1:i + 2]
            if d not in _DIRECTIVES:
                raise ValueError(f"date format {python_format!r}: %{d} is not supported "
                                 f"(use {', '.join('%' + k for k in _DIRECTIVES)})")
            out.append(_DIRECTIVES[d])
            i += 2
            continue
        out.append(f"'{ch}'" if ch.isalpha() else ("''" if ch == "'" else ch))
        i += 1
    return "".join(out)


RECORD_COLUMNS = ["doc_seq", "part", "line_no", "doc_no", "journal_id", "text",
                  "posting_date", "currency", "exp", "account_code", "debit_minor", "credit_minor"]


def rendered(lines: DataFrame, text: Column, part: int = 0) -> DataFrame:
    """Records of a file: (doc_seq, part, line_no) orders them, ``text`` is the record; the line's
    values stay beside it for the layout's ``check`` (the record read back and compared with them)."""
    return lines.withColumn("part", F.lit(part)).withColumn("text", text).select(*RECORD_COLUMNS)


def parse_amount(text: str, currency: str) -> int:
    """Python reader of an amount cell (the ``parse`` functions that read a file back)."""
    return to_minor(Decimal(text), currency) if text.strip() else 0
