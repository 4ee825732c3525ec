"""Amount text -> integer minor units (``jobs.formats.common.with_minor``) against an independent reader.

The Spark expression splits the text at the point and works in integers; the reader here is Python's
``decimal`` at 100 digits of precision, written from the rules, not from the expression: a number
(optional ``-``, digits, optional point and digits), blanks/tabs/line breaks around it and one leading
``+`` ignored; the currency's exponent scales it; |minor| < 10^18; a fraction finer than the currency's
minor unit is ``AMOUNT_PRECISION``; an unknown currency is ``UNKNOWN_CURRENCY``; anything else that is not
a number is ``BAD_AMOUNT``; an optional amount that is empty is 0. Thousands of seeded random strings
(digits, signs, points, grouping, blanks, letters, very long numbers) and the edge cases written out,
evaluated in one Spark job.
"""
from __future__ import annotations

import random
import re
from decimal import Decimal, localcontext

import pytest

pytestmark = pytest.mark.spark

NUMBER = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
EDGES = ["0", "-0", "+0", "0.00", "-0.001", "12.34", "12.345", "12.3400", "-12.3", ".5", "-.5", "5.", "+-5",
         "--5", "++5", "1e5", "1,000.00", "1.000,50", " 7.10 ", "\t7.10\r\n", "7.1\n", "7 .1", ".", "-", "",
         "   ", None, "99999999999999999", "999999999999999999", "9999999999999999.99", "10000000000000000.00",
         "000000000000000000000000001.50", "1.0000000001", "1.0000000000", "12.30000000000000000000",
         "12345678901234567890123456789012345", "٣", "１２", "0x10", "NaN", "Infinity"]


def reference(text: str | None, exp: int | None, optional: bool, separator: str) -> tuple[int | None, str | None]:
    if optional and (text is None or text.strip(" ") == ""):
        return 0, None
    if exp is None:
        return None, "UNKNOWN_CURRENCY"
    if text is None:
        return None, "BAD_AMOUNT"
    t = text.strip(" \t\r\n")
    if t.startswith("+"):
        t = t[1:]
    if separator != ".":
        t = t.replace(".", "").replace(separator, ".")
    if not NUMBER.fullmatch(t):
        return None, "BAD_AMOUNT"
    with localcontext() as ctx:
        ctx.prec = 100
        scaled = Decimal(t).scaleb(exp)
        if abs(scaled) >= 10 ** 18:
            return None, "BAD_AMOUNT"
        if scaled != scaled.to_integral_value():
            return None, "AMOUNT_PRECISION"
        return int(scaled), None


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return "".join(rng.choice("0123456789.,-+ \tabcE\n") for _ in range(rng.randint(0, 8)))
    sign = rng.choice(["", "", "", "-", "+", "+-", " -"])
    whole = "".join(rng.choice("0123456789") for _ in range(rng.choice([0, 1, 1, 2, 3, 5, 16, 17, 18, 19, 25])))
    frac = "".join(rng.choice("0000123456789") for _ in range(rng.choice([0, 1, 2, 2, 3, 4, 9, 12])))
    point = rng.choice([".", ".", ".", ",", ""]) if frac or rng.random() < 0.2 else ""
    pad = rng.choice(["", "", " ", "\t", "\r\n"])
    return f"{pad}{sign}{whole}{point}{frac}{pad}"


def test_integer_minor_units_agree_with_a_decimal_reader(spark):
    from pyspark.sql import functions as F

    from jobs.formats.common import with_minor

    rng = random.Random(20261205)
    texts = EDGES + [_random_text(rng) for _ in range(4000)]
    rows = [(i, t, exp) for i, t in enumerate(texts) for exp in (0, 2, 3, None)]
    df = spark.createDataFrame(rows, "i int, text string, exp int")
    for optional in (False, True):
        for separator in (".", ","):
            out = with_minor(df, "amt", F.col("text"), "exp", optional=optional, decimal_separator=separator)
            got = {(r["i"], r["exp"]): (r["amt"], r["amt_err"]) for r in out.select("i", "exp", "amt", "amt_err").collect()}
            wrong = [(texts[i], exp, got[(i, exp)], reference(texts[i], exp, optional, separator))
                     for i, _, exp in rows if got[(i, exp)] != reference(texts[i], exp, optional, separator)]
            assert not wrong, f"optional={optional} separator={separator!r}: {len(wrong)} disagree, e.g. {wrong[:5]}"
            assert set(out.columns) == set(df.columns) | {"amt", "amt_err"}       # no helper column left behind


def test_the_checks_that_matter_to_a_ledger(spark):
    from pyspark.sql import functions as F

    from jobs.formats.common import with_minor

    df = spark.createDataFrame([("12.34", 2), ("12.345", 2), ("1.0000000001", 2), ("-0.5", 0), ("100.00", 0),
                                ("99999999999999999.99", 2), ("9999999999999999.99", 2), ("7", None)],
                               "text string, exp int")
    out = [(r["amt"], r["amt_err"]) for r in with_minor(df, "amt", F.col("text"), "exp").collect()]
    assert out == [(1234, None), (None, "AMOUNT_PRECISION"),
                   # a digit beyond the minor unit however far out is not rounded away
                   (None, "AMOUNT_PRECISION"), (None, "AMOUNT_PRECISION"), (100, None),
                   (None, "BAD_AMOUNT"), (999999999999999999, None), (None, "UNKNOWN_CURRENCY")]
