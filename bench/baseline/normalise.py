"""Delivered files -> canonical events in DuckDB, with the rules of our parsers (``jobs/formats``).

Each CSV / JSON Lines kind is read with one ``read_csv`` / ``read_json`` over all its files (every column
as text, columns mapped by normalised header name), then turned into events by one SQL statement:
exact decimal amounts -> integer minor units by the currency's ISO 4217 exponent (more decimals than the
currency has is an error, not a rounding), signs, the presentment amount of FX payments, references.
Rows our parsers would quarantine (bad amount, unknown currency / type, missing id, bad timestamp,
inconsistent amounts) are left out, and an Adyen batch whose rows do not sum to its payout row is left
out whole. camt.053 statements are small and parsed in Python.

Card numbers: our parsers mask every Luhn-valid 13-19 digit number in every text column before
anything else sees it, ids included, so masked ids are what matching and de-duplication compare. The
baseline does the same to the id / reference columns it uses (maximal digit runs; our parsers also
accept single spaces or dashes between digits, which the generated ids never contain).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from jobs.formats.adyen import FEE_COLUMNS, TYPE_TO_EVENT
from jobs.formats.common import TZ_ABBREVIATIONS
from jobs.formats.stripe import CATEGORY_TO_EVENT
from jobs.money import CURRENCY_EXPONENTS

BOOK_FIELDS = ("payment_id", "order_id", "psp", "psp_reference", "type", "amount", "currency", "created_at")
# The parsers' own mappings (same rules as our pipeline, kept in one place).
STRIPE_CATEGORIES = CATEGORY_TO_EVENT
ADYEN_TYPES = TYPE_TO_EVENT
ADYEN_FEES = FEE_COLUMNS
TIME_ZONES = TZ_ABBREVIATIONS  # Adyen's TimeZone column: abbreviation -> UTC offset
_DOUBLED = "0246813579"      # Luhn: the digit doubled, digits summed
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _luhn_sql(max_digits: int = 19) -> str:
    terms = []
    for i in range(max_digits):
        digit = f"CAST(substr(d, length(d) - {i}, 1) AS INTEGER)"
        value = f"CAST(substr('{_DOUBLED}', {digit} + 1, 1) AS INTEGER)" if i % 2 else digit
        terms.append(f"CASE WHEN length(d) > {i} THEN {value} ELSE 0 END")
    return " + ".join(terms)


MACROS = [
    "CREATE OR REPLACE MACRO clean(t) AS nullif(trim(t), '')",
    # a major-unit amount string as an exact decimal, null when it is not a plain decimal number
    r"""CREATE OR REPLACE MACRO dec9(t) AS CASE WHEN regexp_full_match(regexp_replace(trim(t), '^\+', ''),
        '-?([0-9]+(\.[0-9]*)?|\.[0-9]+)') THEN TRY_CAST(regexp_replace(trim(t), '^\+', '') AS DECIMAL(38, 9)) END""",
    """CREATE OR REPLACE MACRO amount_error(dec, scaled, e) AS CASE WHEN e IS NULL THEN 'UNKNOWN_CURRENCY'
        WHEN dec IS NULL THEN 'BAD_AMOUNT' WHEN abs(scaled) >= 1000000000000000000 THEN 'BAD_AMOUNT'
        WHEN scaled <> floor(scaled) THEN 'AMOUNT_PRECISION' END""",
    f"CREATE OR REPLACE MACRO luhn_ok(d) AS ({_luhn_sql()}) % 10 = 0",
    """CREATE OR REPLACE MACRO mask_run(d) AS CASE WHEN length(d) BETWEEN 13 AND 19 AND regexp_full_match(d, '[0-9]+')
        AND luhn_ok(d) THEN left(d, 6) || repeat('*', length(d) - 10) || right(d, 4) ELSE d END""",
    """CREATE OR REPLACE MACRO mask_ids(s) AS CASE WHEN regexp_matches(s, '[0-9]{13}') THEN
        array_to_string(list_transform(regexp_extract_all(s, '[0-9]+|[^0-9]+'), lambda t: mask_run(t)), '')
        ELSE s END""",
    # integer a / d rounded half away from zero (Spark's HALF_UP), and half to even (bround)
    "CREATE OR REPLACE MACRO rha(a, d) AS sign(a) * sign(d) * ((abs(a) * 2 + abs(d)) // (2 * abs(d)))",
    """CREATE OR REPLACE MACRO rhe(a, d) AS sign(a) * sign(d) * (abs(a) // abs(d)
        + CASE WHEN 2 * (abs(a) % abs(d)) > abs(d) THEN 1
               WHEN 2 * (abs(a) % abs(d)) = abs(d) AND (abs(a) // abs(d)) % 2 = 1 THEN 1 ELSE 0 END)""",
]


def _values(pairs) -> str:
    return ", ".join(f"('{k}', '{v}')" for k, v in sorted(pairs))


def create_helpers(con) -> None:
    for statement in MACROS:
        con.execute(statement)
    con.execute("CREATE OR REPLACE TABLE ccy (code VARCHAR, exp INTEGER, unit BIGINT)")
    con.executemany("INSERT INTO ccy VALUES (?, ?, ?)", [(c, e, 10 ** e) for c, e in CURRENCY_EXPONENTS.items()])
    con.execute(f"CREATE OR REPLACE TABLE stripe_category AS SELECT * FROM (VALUES {_values(STRIPE_CATEGORIES.items())})"
                " t(category, event_type)")
    con.execute(f"CREATE OR REPLACE TABLE adyen_type AS SELECT * FROM (VALUES {_values(ADYEN_TYPES.items())})"
                " t(type_key, event_type)")
    con.execute(f"CREATE OR REPLACE TABLE time_zone AS SELECT * FROM (VALUES {_values(TIME_ZONES.items())})"
                " t(abbrev, utc_offset)")


# ---------------------------------------------------------------------------------------- reading
def classify(path: Path) -> str:
    """book_csv | book_jsonl | stripe | adyen | camt053, from the file's first bytes (like our sniffers)."""
    head = path.open("rb").read(65536).removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace").lstrip()
    if head.startswith("<") and "camt.053" in head[:4096]:
        return "camt053"
    first = head.split("\n", 1)[0].strip()
    if first.startswith("{"):
        return "book_jsonl"
    header = {_norm(h) for h in first.split(",")}
    if {"balance_transaction_id", "reporting_category"} <= header:
        return "stripe"
    if {"merchant_account", "psp_reference", "batch_number", "net_currency"} <= header:
        return "adyen"
    if set(BOOK_FIELDS) <= header:
        return "book_csv"
    raise ValueError(f"{path}: not a file the baseline reads (book CSV/JSONL, Stripe itemized, Adyen SDR, camt.053)")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().strip('"').lower()).strip("_")


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def load_table(con, table: str, files: list[Path], wanted: list[str], jsonl: bool = False) -> None:
    """``table``: the files' rows with the ``wanted`` columns by normalised header name (absent -> null),
    plus ``file_name`` and ``record_ordinal`` (1-based position among the file's records)."""
    if jsonl:
        columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in wanted) + "}"
        source = (f"read_json({_sql_list(files)}, format='newline_delimited', columns={columns}, filename=true, "
                  "ignore_errors=true)")
    else:
        source = (f"read_csv({_sql_list(files)}, header=true, all_varchar=true, union_by_name=true, filename=true, "
                  "delim=',', quote='\"', escape='\"', ignore_errors=true)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_in AS SELECT * FROM {source}")   # keeps file order
    present: dict[str, list[str]] = {}
    for (name,) in con.execute(f"SELECT column_name FROM (DESCRIBE {table}_in)").fetchall():
        if name != "filename":
            present.setdefault(_norm(name), []).append(name)
    select = []
    for col in wanted:
        raw = ['"' + n.replace('"', '""') + '"' for n in present.get(col, [])]
        expr = "NULL::VARCHAR" if not raw else raw[0] if len(raw) == 1 else f"coalesce({', '.join(raw)})"
        select.append(f"{expr} AS {col}")
    con.execute(f"""CREATE OR REPLACE TABLE {table} AS
        SELECT {', '.join(select)}, parse_filename(filename) AS file_name,
               CAST(row_number() OVER (PARTITION BY filename ORDER BY rowid) AS INTEGER) AS record_ordinal
        FROM {table}_in""")
    con.execute(f"DROP TABLE {table}_in")


# ---------------------------------------------------------------------------------------- book
BOOK_SQL = """
CREATE OR REPLACE TABLE ev_book AS
WITH a AS (SELECT r.*, upper(trim(currency)) AS ccy, trim(amount) AS amount_text, lower(trim(type)) AS kind,
                  trim(created_at) AS created_text FROM book_raw r),
b AS (SELECT a.*, c.exp AS ccy_exp, dec9(amount_text) AS amount_dec, dec9(amount_text) * c.unit AS amount_scaled,
             CASE kind WHEN 'payment' THEN 1 WHEN 'refund' THEN -1 END AS sign
      FROM a LEFT JOIN ccy c ON c.code = a.ccy),
ok AS (SELECT * FROM b
       WHERE clean(payment_id) IS NOT NULL AND sign IS NOT NULL
         AND amount_error(amount_dec, amount_scaled, ccy_exp) IS NULL
         AND NOT (starts_with(amount_text, '-') OR starts_with(amount_text, '+'))
         AND TRY_CAST(created_text AS TIMESTAMPTZ) IS NOT NULL
         AND regexp_matches(created_text, '(Z|[+-][0-9]{2}:?[0-9]{2})$'))
SELECT file_name || '#' || record_ordinal AS event_id, 'book' AS source, 'book' AS source_kind, kind AS event_type,
       lower(clean(psp)) AS psp, CAST(amount_scaled AS BIGINT) * sign AS amount_minor, 0::BIGINT AS fee_minor,
       CAST(amount_scaled AS BIGINT) * sign AS net_minor, ccy AS currency,
       mask_ids(clean(psp_reference)) AS psp_ref, mask_ids(clean(order_id)) AS merchant_ref,
       mask_ids(clean(payment_id)) AS merchant_payment_id, clean(payment_id) AS unmasked_payment_id,
       CAST(TRY_CAST(created_text AS TIMESTAMPTZ) AS TIMESTAMP) AS booked_at, file_name, record_ordinal
FROM ok
"""


# ---------------------------------------------------------------------------------------- Stripe
STRIPE_COLUMNS = ["balance_transaction_id", "currency", "gross", "fee", "net", "reporting_category", "created_utc",
                  "created", "effective_at_utc", "effective_at", "automatic_payout_effective_at_utc",
                  "automatic_payout_effective_at", "payout_expected_arrival_date", "source_id", "charge_id",
                  "customer_facing_amount", "customer_facing_currency", "order_id", "payment_metadata_order_id",
                  "automatic_payout_id", "payout_id", "trace_id", "payment_method_type", "card_brand"]
STRIPE_SQL = """
CREATE OR REPLACE TABLE ev_stripe AS
WITH a AS (
    SELECT r.*, upper(trim(currency)) AS ccy, upper(trim(customer_facing_currency)) AS pccy,
           lower(trim(reporting_category)) AS category, clean(source_id) AS src_id, clean(charge_id) AS chg_id,
           coalesce(clean(created_utc), clean(created), clean(effective_at_utc), clean(effective_at)) AS created_text,
           coalesce(clean(automatic_payout_effective_at_utc), clean(automatic_payout_effective_at),
                    clean(payout_expected_arrival_date)) AS payout_at_text,
           clean(customer_facing_amount) IS NOT NULL AND nullif(upper(trim(customer_facing_currency)), '') IS NOT NULL
               AS has_pres
    FROM stripe_raw r),
b AS (
    SELECT a.*, m.event_type, c.exp AS ccy_exp, pc.exp AS pccy_exp,
           dec9(gross) AS g_dec, dec9(gross) * c.unit AS g_s, dec9(fee) AS f_dec, dec9(fee) * c.unit AS f_s,
           dec9(net) AS n_dec, dec9(net) * c.unit AS n_s,
           dec9(customer_facing_amount) AS p_dec, dec9(customer_facing_amount) * pc.unit AS p_s
    FROM a LEFT JOIN ccy c ON c.code = a.ccy LEFT JOIN ccy pc ON pc.code = a.pccy
           LEFT JOIN stripe_category m ON m.category = a.category),
ok AS (
    SELECT b.*, CAST(g_s AS BIGINT) AS g, CAST(f_s AS BIGINT) AS f, CAST(n_s AS BIGINT) AS n,
           CASE WHEN clean(customer_facing_amount) IS NULL THEN 0 ELSE CAST(p_s AS BIGINT) END AS p
    FROM b
    WHERE clean(balance_transaction_id) IS NOT NULL AND amount_error(g_dec, g_s, ccy_exp) IS NULL
      AND amount_error(f_dec, f_s, ccy_exp) IS NULL AND amount_error(n_dec, n_s, ccy_exp) IS NULL
      AND NOT (has_pres AND amount_error(p_dec, p_s, pccy_exp) IS NOT NULL)
      AND event_type IS NOT NULL AND try_strptime(created_text, '%Y-%m-%d %H:%M:%S') IS NOT NULL
      AND NOT (category IN ('charge', 'refund', 'dispute', 'dispute_reversal') AND src_id IS NULL AND chg_id IS NULL)
      AND g_s - f_s = n_s)
SELECT file_name || '#' || record_ordinal AS event_id, 'stripe' AS source, 'psp' AS source_kind, event_type,
       'stripe' AS psp, g AS amount_minor, f AS fee_minor, n AS net_minor, ccy AS currency,
       CASE WHEN has_pres THEN p END AS presentment_amount_minor, CASE WHEN has_pres THEN pccy END AS presentment_currency,
       CASE WHEN has_pres AND pccy <> ccy AND p <> 0 THEN rha(CAST(g AS HUGEINT) * 10000000000, p) END AS rate10,
       mask_ids(coalesce(src_id, CASE WHEN category = 'charge' THEN chg_id END)) AS psp_ref,
       mask_ids(clean(balance_transaction_id)) AS psp_line_id,
       mask_ids(coalesce(clean(order_id), clean(payment_metadata_order_id))) AS merchant_ref,
       mask_ids(coalesce(clean(automatic_payout_id), clean(payout_id))) AS payout_ref,
       mask_ids(clean(trace_id)) AS payout_bank_ref,
       try_strptime(created_text, '%Y-%m-%d %H:%M:%S') AS booked_at,
       TRY_CAST(substr(payout_at_text, 1, 10) AS DATE) AS value_date,
       coalesce(clean(payment_method_type), clean(card_brand)) AS payment_method, file_name, record_ordinal
FROM ok
"""
STRIPE_FEES_SQL = """
CREATE OR REPLACE TABLE fee_stripe AS
SELECT event_id, 'fee' AS component, fee_minor AS charged_minor FROM ev_stripe WHERE fee_minor <> 0
"""


# ---------------------------------------------------------------------------------------- Adyen
ADYEN_COLUMNS = ["merchant_account", "psp_reference", "merchant_reference", "payment_method", "payment_method_variant",
                 "creation_date", "creation_date_ams", "timezone", "type", "modification_reference", "gross_currency",
                 "gross_debit_gc", "gross_credit_gc", "exchange_rate", "net_currency", "net_debit_nc", "net_credit_nc",
                 *ADYEN_FEES, "batch_number", "booking_date"]
_ADYEN_AMOUNTS = {"nc": ("net_credit_nc", "n"), "nd": ("net_debit_nc", "n"), "gc": ("gross_credit_gc", "g"),
                  "gd": ("gross_debit_gc", "g"), **{f"fee_{name}": (col, "n") for col, name in ADYEN_FEES.items()}}
_UNPARSED = "('BAD_AMOUNT', 'UNKNOWN_CURRENCY', 'MALFORMED_ROW', 'AMOUNT_PRECISION')"


def adyen_sql() -> list[str]:
    decs = ", ".join(f"dec9({col}) AS {k}_dec, dec9({col}) * {c}.unit AS {k}_s" for k, (col, c) in _ADYEN_AMOUNTS.items())
    errs = ", ".join(f"CASE WHEN clean({col}) IS NOT NULL THEN amount_error({k}_dec, {k}_s, {c}_exp) END AS {k}_err"
                     for k, (col, c) in _ADYEN_AMOUNTS.items())
    vals = ", ".join(f"CASE WHEN clean({col}) IS NULL THEN 0 WHEN {k}_err IS NULL THEN CAST({k}_s AS BIGINT) END AS {k}"
                     for k, (col, c) in _ADYEN_AMOUNTS.items())
    fees = [f"fee_{name}" for name in ADYEN_FEES.values()]
    fee_errs = ", ".join(f"{f}_err" for f in fees)
    rows = f"""
CREATE OR REPLACE TABLE adyen_rows AS
WITH a AS (
    SELECT r.*, upper(trim(net_currency)) AS nccy, upper(trim(gross_currency)) AS gccy, m.event_type,
           lower(regexp_replace(type, '\\s+', '', 'g')) AS type_key, clean(psp_reference) AS pspref,
           clean(modification_reference) AS modref, clean(batch_number) AS batch,
           coalesce(clean(creation_date), clean(creation_date_ams)) AS local_text, tz.utc_offset,
           nullif(upper(trim(gross_currency)), '') IS NOT NULL
               AND (clean(gross_credit_gc) IS NOT NULL OR clean(gross_debit_gc) IS NOT NULL) AS has_gross,
           CASE WHEN clean(exchange_rate) IS NOT NULL THEN CAST(dec9(exchange_rate) * 1000000000 AS HUGEINT) END AS rate9
    FROM adyen_raw r
    LEFT JOIN adyen_type m ON m.type_key = lower(regexp_replace(r.type, '\\s+', '', 'g'))
    LEFT JOIN time_zone tz ON tz.abbrev = upper(trim(CASE WHEN clean(r.creation_date) IS NOT NULL THEN r.timezone
                                                          ELSE 'CET' END))),
b AS (SELECT a.*, n.exp AS n_exp, g.exp AS g_exp, {decs},
             event_type IN ('capture', 'refund', 'chargeback', 'second_chargeback', 'chargeback_reversal') AS is_tx,
             try_strptime(trim(local_text) || ' ' || utc_offset, '%Y-%m-%d %H:%M:%S %z') AS ts
      FROM a LEFT JOIN ccy n ON n.code = a.nccy LEFT JOIN ccy g ON g.code = a.gccy),
c AS (SELECT b.*, {errs} FROM b),
d AS (SELECT c.*, {vals} FROM c),
e AS (SELECT d.*, nc - nd AS net, {' + '.join(fees)} AS fee, gc - gd AS pres FROM d)
SELECT e.*, coalesce(
    CASE WHEN event_type IS NULL THEN 'UNKNOWN_TYPE' END, CASE WHEN n_exp IS NULL THEN 'UNKNOWN_CURRENCY' END,
    nc_err, nd_err, CASE WHEN has_gross THEN coalesce(gc_err, gd_err) END, {fee_errs},
    CASE WHEN utc_offset IS NULL OR ts IS NULL THEN 'BAD_TIMESTAMP' END,
    CASE WHEN is_tx AND pspref IS NULL THEN 'MISSING_ID' END, CASE WHEN batch IS NULL THEN 'MISSING_ID' END,
    CASE WHEN is_tx AND has_gross AND rate9 IS NOT NULL AND abs(abs(net) - (
        rha(rha(CAST(abs(pres) AS HUGEINT) * rate9, CAST(10 ** (g_exp + 3) AS HUGEINT)) * CAST(10 ** n_exp AS HUGEINT),
            1000000) + CASE WHEN net >= 0 THEN -fee ELSE fee END)) > 1 THEN 'INCONSISTENT_AMOUNTS' END) AS error
FROM e"""
    held = f"""
CREATE OR REPLACE TABLE adyen_held AS      -- batches whose rows do not sum to their MerchantPayout row
SELECT file_name FROM adyen_rows GROUP BY file_name
HAVING count(*) FILTER (WHERE error IN {_UNPARSED}) = 0 AND count(*) FILTER (WHERE event_type = 'payout') = 1
   AND sum(net) FILTER (WHERE NOT coalesce(error IN {_UNPARSED}, false)) <> 0"""
    events = """
CREATE OR REPLACE TABLE ev_adyen AS
SELECT file_name || '#' || record_ordinal AS event_id, 'adyen' AS source, 'psp' AS source_kind, event_type,
       'adyen' AS psp, net + fee AS amount_minor, fee AS fee_minor, net AS net_minor, nccy AS currency,
       CASE WHEN has_gross THEN pres END AS presentment_amount_minor, CASE WHEN has_gross THEN gccy END AS presentment_currency,
       CASE WHEN has_gross THEN rate9 * 10 END AS rate10,
       mask_ids(CASE WHEN event_type = 'capture' THEN pspref WHEN is_tx THEN modref END) AS psp_ref,
       mask_ids(concat_ws('|', coalesce(modref, pspref), type_key, batch)) AS psp_line_id,
       mask_ids(clean(merchant_reference)) AS merchant_ref, mask_ids(batch) AS payout_ref,
       mask_ids(CASE WHEN event_type = 'payout' THEN coalesce(nullif(regexp_extract(modref, '(TX[0-9A-Z]+XT)', 1), ''),
                                                                modref) END) AS payout_bank_ref,
       mask_ids(clean(merchant_account)) AS account_ref, CAST(ts AS TIMESTAMP) AS booked_at,
       TRY_CAST(substr(clean(booking_date), 1, 10) AS DATE) AS value_date,
       mask_ids(coalesce(clean(payment_method_variant), clean(payment_method))) AS payment_method, file_name, record_ordinal
FROM adyen_rows WHERE error IS NULL AND file_name NOT IN (SELECT file_name FROM adyen_held)"""
    components = ", ".join("{'component': '" + name + "', 'charged': fee_" + name + "}" for name in ADYEN_FEES.values())
    fee_rows = f"""
CREATE OR REPLACE TABLE fee_adyen AS
SELECT event_id, c.component, c.charged AS charged_minor
FROM (SELECT file_name || '#' || record_ordinal AS event_id, unnest([{components}]) AS c
      FROM adyen_rows WHERE error IS NULL AND fee <> 0 AND file_name NOT IN (SELECT file_name FROM adyen_held))
WHERE c.charged <> 0"""
    return [rows, held, events, fee_rows]


# ---------------------------------------------------------------------------------------- camt.053
BANK_COLUMNS = ("event_id VARCHAR, source VARCHAR, source_kind VARCHAR, event_type VARCHAR, amount_minor BIGINT, "
                "fee_minor BIGINT, net_minor BIGINT, currency VARCHAR, bank_ref VARCHAR, bank_text VARCHAR, "
                "account_ref VARCHAR, booked_at TIMESTAMP, value_date DATE, file_name VARCHAR, record_ordinal INTEGER")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(el, *path: str):
    for name in path:
        el = next((ch for ch in el if _local(ch.tag) == name), None) if el is not None else None
    return el


def _text(el, *path: str) -> str | None:
    node = _find(el, *path)
    return node.text.strip() if node is not None and node.text and node.text.strip() else None


def _minor(text: str | None, ccy: str) -> int | None:
    try:
        value = Decimal((text or "").strip()).scaleb(CURRENCY_EXPONENTS[ccy])
    except (InvalidOperation, KeyError):
        return None
    return int(value) if value == value.to_integral_value() else None


def _card_windows(text: str) -> list[tuple[int, int]]:
    """13-19 digit windows (single spaces / dashes allowed between digits) starting where a digit group
    starts, not followed by a digit, passing the Luhn check: what our parsers mask."""
    found = []
    for i, ch in enumerate(text):
        if not ch.isdigit() or (i and text[i - 1].isdigit()):
            continue
        digits, j = "", i
        while j < len(text) and len(digits) < 19:
            if text[j].isdigit():
                digits, j = digits + text[j], j + 1
                if len(digits) >= 13 and (j >= len(text) or not text[j].isdigit()) and _luhn(digits):
                    found.append((i, j))
            elif text[j] in " -" and j + 1 < len(text) and text[j + 1].isdigit() and digits:
                j += 1
            else:
                break
    return found


def _luhn(digits: str) -> bool:
    return sum(int(_DOUBLED[int(d)]) if k % 2 else int(d) for k, d in enumerate(reversed(digits))) % 10 == 0


def mask_text(text: str | None) -> str | None:
    if not text:
        return text
    for a, b in sorted(_card_windows(text), key=lambda w: w[0] - w[1]):
        chunk = text[a:b]
        digits = re.sub(r"[ -]", "", chunk)
        text = text.replace(chunk, digits[:6] + "*" * (len(digits) - 10) + digits[-4:])
    return text


def _texts(entry, name: str) -> list[str]:
    return [n.text.strip() for n in entry.iter() if _local(n.tag) == name and n.text and n.text.strip()]


def _entry(entry, stmt: dict) -> dict | None:
    """One booked entry as an event row; None when it is not booked. Raises ValueError when unreadable."""
    amt = _find(entry, "Amt")
    ccy = ((amt.get("Ccy") if amt is not None else None) or stmt["currency"] or "").upper()
    minor = _minor(amt.text if amt is not None else None, ccy)
    if minor is None:
        raise ValueError("entry amount unreadable")
    credit = (_text(entry, "CdtDbtInd") == "CRDT") != ((_text(entry, "RvslInd") or "").lower() == "true")
    signed = minor if credit else -minor
    if (_text(entry, "Sts") or _text(entry, "Sts", "Cd") or "BOOK").upper() != "BOOK":
        return None
    stmt["movement"] += signed
    stmt["currencies"].add(ccy)
    booked = _text(entry, "BookgDt", "DtTm") or _text(entry, "BookgDt", "Dt")
    if booked is None:
        return {}                                  # BAD_TIMESTAMP: not loaded, but counted in the balance
    at = datetime.fromisoformat(booked.replace("Z", "+00:00"))
    at = at.astimezone(timezone.utc).replace(tzinfo=None) if at.tzinfo else at
    value = _text(entry, "ValDt", "Dt") or _text(entry, "ValDt", "DtTm")
    refs = [t for name in ("EndToEndId", "Ustrd", "Ref", "AddtlNtryInf", "AddtlTxInf") for t in _texts(entry, name)]
    return {"event_type": "bank_credit" if credit else "bank_debit", "amount_minor": signed, "currency": ccy,
            "bank_ref": mask_text(_text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")),
            "bank_text": mask_text(EMAIL.sub("[email]", " | ".join(dict.fromkeys(refs))) or None), "account_ref": mask_text(stmt["account"]),
            "booked_at": at, "value_date": date.fromisoformat(value[:10]) if value else None}


def _balance(bal) -> tuple[str, int, str] | None:
    code, amt = _text(bal, "Tp", "CdOrPrtry", "Cd"), _find(bal, "Amt")
    if code not in ("OPBD", "CLBD", "PRCD") or amt is None:
        return None
    ccy = (amt.get("Ccy") or "").upper()
    minor = _minor(amt.text, ccy)
    if minor is None:
        raise ValueError(f"balance {code} unreadable")
    return code, (-minor if _text(bal, "CdtDbtInd") == "DBIT" else minor), ccy


def camt053_rows(path: Path) -> list[dict]:
    """Event rows of one camt.053 file; [] when the file is held back (a statement does not add up)."""
    rows, ordinal = [], 0
    for stmt_el in (el for el in ET.parse(path).getroot().iter() if _local(el.tag) == "Stmt"):
        stmt = {"account": _text(stmt_el, "Acct", "Id", "IBAN") or _text(stmt_el, "Acct", "Id", "Othr", "Id"),
                "currency": (_text(stmt_el, "Acct", "Ccy") or "").upper() or None, "movement": 0, "currencies": set()}
        balances, unreadable = {}, False
        for child in stmt_el:
            if _local(child.tag) == "Bal":
                try:
                    found = _balance(child)
                except ValueError:
                    unreadable = True
                    continue
                if found:
                    balances.setdefault(found[0], found[1:])
            elif _local(child.tag) == "Ntry":
                ordinal += 1
                try:
                    row = _entry(child, stmt)
                except ValueError:
                    unreadable = True
                    continue
                if row:
                    rows.append({**row, "record_ordinal": ordinal})
        opening, closing = balances.get("OPBD") or balances.get("PRCD"), balances.get("CLBD")
        currencies = stmt["currencies"] | {b[1] for b in (opening, closing) if b} | (
            {stmt["currency"]} if stmt["currency"] else set())
        verifiable = not unreadable and opening and closing and len(currencies) == 1
        if verifiable and opening[0] + stmt["movement"] != closing[0]:
            return []
    return [{**r, "event_id": f"{path.name}#{r['record_ordinal']}", "source": "bank", "source_kind": "bank",
             "fee_minor": 0, "net_minor": r["amount_minor"], "file_name": path.name} for r in rows]


def load_bank(con, files: list[Path]) -> None:
    con.execute(f"CREATE OR REPLACE TABLE ev_bank ({BANK_COLUMNS})")
    names = [c.split()[0] for c in BANK_COLUMNS.split(", ")]
    rows = [tuple(r.get(n) for n in names) for f in files for r in camt053_rows(f)]
    if rows:
        con.executemany(f"INSERT INTO ev_bank ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)


# ---------------------------------------------------------------------------------------- all
def normalise(con, files: list[Path]) -> dict[str, int]:
    """Creates ``ev`` (canonical events) and ``fee_charged`` (fee components); returns files per kind."""
    create_helpers(con)
    by_kind: dict[str, list[Path]] = {}
    for f in sorted(files, key=lambda p: p.name):
        by_kind.setdefault(classify(f), []).append(f)
    fields = list(BOOK_FIELDS) + ["customer_email", "description"]
    parts = []
    book_csv, book_jsonl = by_kind.get("book_csv", []), by_kind.get("book_jsonl", [])
    if book_csv or book_jsonl:
        con.execute("CREATE OR REPLACE TABLE book_raw (" + ", ".join(f"{c} VARCHAR" for c in fields)
                    + ", file_name VARCHAR, record_ordinal INTEGER)")
        for kind_files, jsonl in ((book_csv, False), (book_jsonl, True)):
            if kind_files:
                load_table(con, "book_part", kind_files, fields, jsonl=jsonl)
                con.execute("INSERT INTO book_raw SELECT * FROM book_part")
        con.execute(BOOK_SQL)
        parts.append("ev_book")
    fee_tables = []
    if by_kind.get("stripe"):
        load_table(con, "stripe_raw", by_kind["stripe"], STRIPE_COLUMNS)
        con.execute(STRIPE_SQL)
        con.execute(STRIPE_FEES_SQL)
        parts.append("ev_stripe")
        fee_tables.append("fee_stripe")
    if by_kind.get("adyen"):
        load_table(con, "adyen_raw", by_kind["adyen"], ADYEN_COLUMNS)
        for statement in adyen_sql():
            con.execute(statement)
        parts.append("ev_adyen")
        fee_tables.append("fee_adyen")
    if by_kind.get("camt053"):
        load_bank(con, by_kind["camt053"])
        parts.append("ev_bank")
    if not parts:
        raise ValueError("no files the baseline reads")
    con.execute("CREATE OR REPLACE TABLE ev AS " + " UNION ALL BY NAME ".join(f"SELECT * FROM {p}" for p in parts))
    con.execute("CREATE OR REPLACE TABLE fee_charged AS " + (" UNION ALL ".join(
        f"SELECT * FROM {t}" for t in fee_tables) or
        "SELECT NULL::VARCHAR AS event_id, NULL::VARCHAR AS component, NULL::BIGINT AS charged_minor WHERE false"))
    return {k: len(v) for k, v in by_kind.items()}
