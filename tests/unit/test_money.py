from decimal import Decimal

import pytest

from jobs.money import MoneyError, exponent, format_minor, from_minor, to_minor


@pytest.mark.parametrize("amount,currency,minor", [
    ("12.34", "usd", 1234), ("0.01", "EUR", 1), ("-5.00", "GBP", -500), ("1000", "JPY", 1000),
    ("1.234", "KWD", 1234), ("7", "CLF", 70000), ("  42.5 ", "EUR", 4250),
])
def test_major_units_convert_exactly_to_minor_units(amount, currency, minor):
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize("amount,currency", [("1.234", "USD"), ("0.5", "JPY"), ("1.0001", "KWD")])
def test_sub_minor_precision_is_refused_not_rounded(amount, currency):
    with pytest.raises(MoneyError, match="more decimals"):
        to_minor(amount, currency)


def test_unknown_currency_and_garbage_are_errors():
    with pytest.raises(MoneyError, match="unknown currency"):
        exponent("XXY")
    with pytest.raises(MoneyError, match="not a decimal"):
        to_minor("12,34abc", "EUR")


def test_formatting_round_trips_with_the_currency_exponent():
    for minor, ccy, text in [(-5, "USD", "-0.05"), (1234, "KWD", "1.234"), (7, "JPY", "7"), (100, "EUR", "1.00")]:
        assert format_minor(minor, ccy) == text
        assert to_minor(text, ccy) == minor
    assert from_minor(1234, "KWD") == Decimal("1.234")
