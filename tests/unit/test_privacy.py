"""PAN masking and PII hashing in Spark."""
import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F

from jobs.privacy import hash_pii, mask_card_numbers, redact_emails

pytestmark = pytest.mark.spark


def test_luhn_valid_card_numbers_are_masked_to_first6_last4(spark):
    rows = [
        ("card 4242424242424242 ok", "card 424242******4242 ok"),
        ("4111-1111-1111-1111", "411111******1111"),
        ("amex 378282246310005.", "amex 378282*****0005."),
        ("5555 5555 5555 4444 and 4000056655665556", "555555******4444 and 400005******5556"),
        ("ref 4242424242424241", "ref 4242424242424241"),          # fails Luhn: an id, kept
        ("order 123456789012", "order 123456789012"),              # 12 digits: too short
        ("12345678901234567890", "12345678901234567890"),          # 20 digits: too long
        (None, None),
    ]
    df = spark.createDataFrame(rows, "text string, expected string").withColumn("masked", mask_card_numbers(F.col("text")))
    assert_column_equality(df, "masked", "expected")


def test_pii_hash_is_stable_per_salt_and_differs_between_tenants(spark):
    df = spark.createDataFrame([(" Ann@Example.com ",), ("ann@example.com",), ("",), (None,)], "email string")
    out = df.select(hash_pii(F.col("email"), "salt-a").alias("a"), hash_pii(F.col("email"), "salt-b").alias("b")).collect()
    assert out[0].a == out[1].a and len(out[0].a) == 64
    assert out[0].a != out[0].b
    assert "ann" not in out[0].a
    assert out[2].a is None and out[3].a is None


def test_emails_are_redacted_from_raw_text(spark):
    """Whole addresses, wherever they sit; a damaged file read as one record of megabytes without an
    address (which the expression once scanned from every position, for hours) comes back unchanged."""
    long_run = "A" * 2_000_000
    rows = [("P1,ann.b+x@example.co.uk,12.00", "P1,[email],12.00"),
            ("x;a.b@c.de;y e@f.gh", "x;[email];y [email]"),
            ("no@address", "no@address"),
            (long_run, long_run),
            (long_run + " ann@example.com", long_run + " [email]")]
    df = spark.createDataFrame(rows, "raw string, expected string")
    got = [r[0] == r[1] for r in df.select(redact_emails(F.col("raw")), "expected").collect()]
    assert got == [True] * len(rows)


def test_a_luhn_valid_id_is_masked_the_same_way_on_every_side(spark):
    """Id fields are scanned too: a 16-digit PSP reference that passes Luhn is indistinguishable from
    a card number and is stored masked; book and PSP mask it identically, so it still pairs."""
    df = spark.createDataFrame([("8815000000000099",), ("8815000000000099",)], "ref string")
    masked = [r[0] for r in df.select(mask_card_numbers(F.col("ref"))).collect()]
    assert masked == ["881500******0099", "881500******0099"]
