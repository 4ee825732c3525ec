"""De-duplication, book <-> PSP levels 1 and 2, and payout <-> bank, in DuckDB SQL.

The rules of ``jobs/match`` for one business day on a fresh lake:
  duplicates   the same natural key (book: payment id + type; PSP: its line id; bank: account + bank
               reference + amount + value date) delivered again: the first delivery (file name, record
               position) is the original, later copies take part in nothing;
  L1           PSP id + kind (payment/capture alike) + currency + amount equal; the PSP side compared in
               the customer's (presentment) currency;
  L2           on what L1 left: normalised merchant reference (upper case, punctuation removed, one known
               prefix such as ORDER stripped) + kind + currency + amount;
  one-to-one   a candidate pair is taken when it is the only candidate of both its records; taken records
               leave the pool and the rule is applied once more (``jobs/match/assign.py``, two rounds);
  payouts      a PSP payout (its records' net) against one bank entry: the bank text names the payout id
               or the PSP's bank reference and the amount and currency agree; else the same amount and
               currency within the value-date window, unique on both sides.
"""
from __future__ import annotations

from jobs.match.rules import DEFAULT_PREFIXES

ROUND = """SELECT b_id, p_id FROM (SELECT b_id, p_id, count(*) OVER (PARTITION BY b_id) AS nb,
                                   count(*) OVER (PARTITION BY p_id) AS np FROM {pool}) WHERE nb = 1 AND np = 1"""


def norm_ref_macro(prefixes: tuple[str, ...]) -> str:
    alternatives = "|".join(sorted(prefixes, key=len, reverse=True))
    compact = "regexp_replace(upper(t), '[^A-Z0-9]', '', 'g')"
    stripped = f"regexp_replace({compact}, '^({alternatives})(.+)$', '\\2')" if prefixes else compact
    return f"CREATE OR REPLACE MACRO norm_ref(t) AS nullif({stripped}, '')"


def one_to_one(con, candidates: str, out: str) -> None:
    """``out`` (b_id, p_id): the pairs of ``candidates`` taken in two rounds of 'only candidate of both'."""
    con.execute(f"CREATE OR REPLACE TABLE {out} AS {ROUND.format(pool=candidates)}")
    rest = (f"(SELECT * FROM {candidates} WHERE b_id NOT IN (SELECT b_id FROM {out}) "
            f"AND p_id NOT IN (SELECT p_id FROM {out}))")
    con.execute(f"INSERT INTO {out} {ROUND.format(pool=rest)}")


DEDUPE = """
CREATE OR REPLACE TABLE dup AS
SELECT event_id FROM (
    SELECT event_id, row_number() OVER (PARTITION BY k ORDER BY file_name, record_ordinal) AS rn
    FROM (SELECT event_id, file_name, record_ordinal, CASE source_kind
              WHEN 'book' THEN concat_ws('|', 'book', {book_id}, event_type)
              WHEN 'psp' THEN CASE WHEN psp_line_id IS NOT NULL THEN concat_ws('|', source, psp_line_id) END
              WHEN 'bank' THEN CASE WHEN bank_ref IS NOT NULL THEN concat_ws('|', 'bank', account_ref, bank_ref,
                  CAST(amount_minor AS VARCHAR), CAST(value_date AS VARCHAR)) END END AS k
          FROM ev) WHERE k IS NOT NULL)
WHERE rn > 1"""

SIDES = """
CREATE OR REPLACE TABLE side AS
SELECT event_id, source_kind = 'book' AS is_book,
       CASE WHEN event_type IN ('payment', 'capture') THEN 'payment' ELSE event_type END AS kind,
       CASE WHEN presentment_currency IS NOT NULL THEN presentment_amount_minor ELSE amount_minor END AS amount,
       CASE WHEN presentment_currency IS NOT NULL THEN presentment_currency ELSE currency END AS ccy,
       psp_ref, norm_ref(merchant_ref) AS mref
FROM ev
WHERE event_id NOT IN (SELECT event_id FROM dup)
  AND ((source_kind = 'book' AND event_type IN ('payment', 'refund'))
       OR (source_kind = 'psp' AND event_type IN ('payment', 'capture', 'refund')))"""

L1 = """
CREATE OR REPLACE TABLE cand1 AS
SELECT b.event_id AS b_id, p.event_id AS p_id
FROM side b JOIN side p ON b.psp_ref = p.psp_ref AND b.kind = p.kind AND b.ccy = p.ccy AND b.amount = p.amount
WHERE b.is_book AND NOT p.is_book"""

L2 = """
CREATE OR REPLACE TABLE cand2 AS
SELECT b.event_id AS b_id, p.event_id AS p_id
FROM side b JOIN side p ON b.mref = p.mref AND b.kind = p.kind AND b.ccy = p.ccy AND b.amount = p.amount
WHERE b.is_book AND NOT p.is_book
  AND b.event_id NOT IN (SELECT b_id FROM l1) AND p.event_id NOT IN (SELECT p_id FROM l1)"""

PAYOUTS = """
CREATE OR REPLACE TABLE po AS
SELECT source || '|' || payout_ref AS po_key,
       sum(CASE WHEN event_type <> 'payout' THEN net_minor ELSE 0 END) AS po_amount,
       any_value(currency) AS po_currency,
       coalesce(max(CAST(booked_at AS DATE)) FILTER (WHERE event_type = 'payout'), max(value_date),
                max(CAST(booked_at AS DATE))) AS po_expected,
       list_distinct(flatten(list([upper(payout_ref), upper(payout_bank_ref)]))) AS refs
FROM ev
WHERE source_kind = 'psp' AND payout_ref IS NOT NULL AND event_id NOT IN (SELECT event_id FROM dup)
GROUP BY source, payout_ref HAVING count(DISTINCT currency) = 1;

CREATE OR REPLACE TABLE bk AS
SELECT event_id AS b_id, amount_minor AS bk_amount, currency AS bk_currency,
       coalesce(value_date, CAST(booked_at AS DATE)) AS bk_date, upper(coalesce(bank_text, '')) AS bk_text
FROM ev WHERE source_kind = 'bank' AND event_id NOT IN (SELECT event_id FROM dup);

CREATE OR REPLACE TABLE by_ref AS
SELECT DISTINCT t.b_id, r.po_key
FROM (SELECT b_id, unnest(regexp_split_to_array(bk_text, '[^A-Z0-9_]+')) AS token FROM bk) t
JOIN (SELECT po_key, unnest(refs) AS token FROM po) r ON r.token = t.token
WHERE length(t.token) >= 6 AND length(r.token) >= 6;

CREATE OR REPLACE TABLE ref_cand AS
SELECT x.b_id, x.po_key AS p_id, bk.bk_amount = po.po_amount AND bk.bk_currency = po.po_currency AS agrees
FROM by_ref x JOIN bk USING (b_id) JOIN po USING (po_key)"""

PAYOUT_FALLBACK = """
CREATE OR REPLACE TABLE flagged AS       -- reference found, amount differs: PAYOUT_MISMATCH, never matched
SELECT b_id, p_id FROM ref_cand
WHERE NOT agrees AND b_id NOT IN (SELECT b_id FROM pb_ref) AND p_id NOT IN (SELECT p_id FROM pb_ref);

CREATE OR REPLACE TABLE amount_cand AS
SELECT bk.b_id, po.po_key AS p_id
FROM bk JOIN po ON bk.bk_amount = po.po_amount AND bk.bk_currency = po.po_currency
WHERE abs(bk.bk_date - po.po_expected) <= {window} AND bk.bk_date >= po.po_expected - 1
  AND bk.b_id NOT IN (SELECT b_id FROM pb_ref) AND bk.b_id NOT IN (SELECT b_id FROM flagged)
  AND po.po_key NOT IN (SELECT p_id FROM pb_ref) AND po.po_key NOT IN (SELECT p_id FROM flagged);

CREATE OR REPLACE TABLE pb AS
SELECT b_id, p_id FROM pb_ref
UNION ALL
SELECT b_id, p_id FROM (SELECT b_id, p_id, count(*) OVER (PARTITION BY b_id) AS nb,
                               count(*) OVER (PARTITION BY p_id) AS np FROM amount_cand) WHERE nb = 1 AND np = 1"""


def match(con, matching: dict) -> dict[str, int]:
    """Creates ``dup``, ``l1``, ``l2`` and ``pb`` (bank entry -> payout key); returns pair counts."""
    prefixes = tuple(str(p).upper() for p in matching.get("reference_prefixes", DEFAULT_PREFIXES))
    con.execute(norm_ref_macro(prefixes))
    con.execute(DEDUPE.format(book_id="merchant_payment_id"))
    con.execute(SIDES)
    con.execute(L1)
    one_to_one(con, "cand1", "l1")
    con.execute(L2)
    one_to_one(con, "cand2", "l2")
    con.execute(PAYOUTS)
    one_to_one(con, "(SELECT b_id, p_id FROM ref_cand WHERE agrees)", "pb_ref")
    con.execute(PAYOUT_FALLBACK.format(window=int(matching.get("payout_value_date_window_days", 3))))
    count = lambda table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: E731
    return {"L1": count("l1"), "L2": count("l2"), "payout_bank": count("pb"), "duplicates": count("dup")}


def masked_id_duplicates(con) -> int:
    """Book records flagged as repeats only because their masked payment ids collide (diagnostic)."""
    con.execute(DEDUPE.format(book_id="unmasked_payment_id").replace("TABLE dup", "TABLE dup_unmasked"))
    return con.execute("SELECT count(*) FROM dup WHERE event_id NOT IN (SELECT event_id FROM dup_unmasked)").fetchone()[0]
