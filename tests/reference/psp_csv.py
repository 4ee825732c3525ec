"""Independent reference rules for the PSP reports delivered as CSV (or as a workbook holding one), for
the tests: Stripe (itemized payout reconciliation, Balance report itemized, the legacy balance history
export), Adyen settlement details, PayPal STL and TRR, Braintree transaction search, Checkout.com
settlement breakdown and payouts.

The files are read with Python's ``csv`` module (``csvfile.rows``) or openpyxl (``xlsx_sheet.rows``);
each rule below is written from the format's documentation (``/work/shared/design/formats.md``: vendor
documentation and public samples) and from the canonical meaning the parsers promise in their module
docstrings (sign conventions, which rows carry no money); it shares no code with ``jobs/formats``, and
its currency table is its own (``csvfile.EXPONENTS``).

Per data record a rule says one of:

- ``event``: money moved; ``amount`` and ``net`` in the currency's minor units, signed from the merchant's
  view (money into the merchant's PSP balance > 0), and the currency;
- ``skipped``: read, but no money moved (a void, an authorisation, a pending transaction);
- ``invalid``: the record should be quarantined (an amount that is not one, an unknown type...);
- ``unchecked``: the reference does not restate the rule that decides (a currency or time-zone
  abbreviation outside its short tables, a transaction type it knows by name only); the record must be
  read and accounted for, its outcome is not compared.

Per file: the format the header says it is, ``refused`` (a column the rule needs is missing or named twice:
the file is refused whole) and the control-total verdict where the format has one (``control``: True
adds up, False does not -> the file is held back, None not verifiable; ``control_known`` False when the
reference cannot tell).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from reference import csvfile

EVENT, SKIPPED, INVALID, UNCHECKED = "event", "skipped", "invalid", "unchecked"

# Codes that look like currencies but are not one money can be in (ISO 4217 "no currency" / testing codes,
# and withdrawn codes such as the legacy euro-area currencies).
NOT_A_CURRENCY = set("XXX XTS DEM FRF NLG ITL ESP BEF ATS PTE FIM IEP GRD LUF XEU".split())
# Time-zone abbreviations as PSPs write them (Adyen's TimeZone, Braintree's Created Timezone) with a
# well-known fixed offset. Any other abbreviation makes the record ``unchecked``.
TZ_ABBREVIATIONS = set("UTC GMT WET WEST BST CET CEST EET EEST EST EDT CST CDT MST MDT PST PDT".split())
MAX_MINOR = 10 ** 18
_AMOUNT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class Outcome:
    ordinal: int
    kind: str                       # event | skipped | invalid | unchecked
    amount: int | None = None       # minor units, signed from the merchant's view
    net: int | None = None
    currency: str | None = None
    why: str = ""


@dataclass
class Expected:
    format: str
    outcomes: list[Outcome] = field(default_factory=list)
    refused: str | None = None      # why the whole file is refused by its header
    control: bool | None = None
    control_known: bool = True

    def count(self, kind: str) -> int:
        return sum(o.kind == kind for o in self.outcomes)


@dataclass(frozen=True)
class Rec:
    ordinal: int
    fields: dict[str, str]
    width: int

    def get(self, *names: str) -> str:
        """The first of ``names`` the record has a value for (stripped), else ''."""
        for name in names:
            value = (self.fields.get(name) or "").strip()
            if value:
                return value
        return ""


def key(name: str) -> str:
    return csvfile.header_key(name)


def _table(rows: list[list[str]]) -> tuple[list[str], list[Rec]]:
    header = [key(h) for h in rows[0]]
    recs = []
    for i, row in enumerate(rows[1:], start=1):
        fields: dict[str, str] = {}
        for name, value in zip(header, row):
            fields.setdefault(name, value)           # a name written twice: its first column
        recs.append(Rec(i, fields, len(row)))
    return header, recs


# ----------------------------------------------------------------------------------------------- values
def exponent(code: str) -> tuple[str, int | None, bool]:
    """(upper-cased code, its exponent or None, whether the reference knows the code is not a currency)."""
    code = (code or "").strip().upper()
    exp = csvfile.EXPONENTS.get(code)
    bad = exp is None and (code in NOT_A_CURRENCY or not re.fullmatch(r"[A-Z]{3}", code))
    return code, exp, bad


def major(text: str) -> Decimal | None:
    """A major-unit decimal as the reports write it: optional sign, '.' as decimal separator."""
    text = (text or "").strip()
    return Decimal(text) if _AMOUNT.fullmatch(text) else None


def minor(text: str, exp: int, empty_is_zero: bool = False) -> int | None:
    """A major-unit amount in minor units; None when it is not one exactly (or is absurdly large)."""
    if empty_is_zero and not (text or "").strip():
        return 0
    value = major(text)
    if value is None:
        return None
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value() or abs(scaled) >= MAX_MINOR:
        return None
    return int(scaled)


def timestamp(text: str, *patterns: str) -> datetime | None:
    text = (text or "").strip()
    for pattern in patterns:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


class _Check:
    """Collects the first reason a record is invalid, or that the reference cannot judge it."""

    def __init__(self) -> None:
        self.invalid: str | None = None
        self.unchecked: str | None = None

    def bad(self, cond: bool, why: str) -> None:
        if cond and self.invalid is None:
            self.invalid = why

    def unsure(self, cond: bool, why: str) -> None:
        if cond and self.unchecked is None:
            self.unchecked = why

    def outcome(self, ordinal: int, amount=None, net=None, currency=None, skipped: bool = False) -> Outcome:
        if self.invalid:
            return Outcome(ordinal, INVALID, why=self.invalid)
        if self.unchecked:
            return Outcome(ordinal, UNCHECKED, why=self.unchecked)
        if skipped:
            return Outcome(ordinal, SKIPPED)
        return Outcome(ordinal, EVENT, amount, net, currency)


def _currency(check: _Check, text: str, what: str) -> tuple[str, int | None]:
    code, exp, bad = exponent(text)
    check.bad(bad, f"{what} {code!r} is not a currency")
    check.unsure(exp is None and not bad, f"{what} {code!r} is not in the reference's table")
    return code, exp


def _amount(check: _Check, text: str, exp: int | None, what: str, empty_is_zero: bool = False) -> int | None:
    if exp is None:
        return None
    value = minor(text, exp, empty_is_zero)
    check.bad(value is None, f"{what} {text!r} is not an amount in minor units")
    return value


def _refused(header: list[str], needs: list[tuple[str, ...]]) -> str | None:
    counts = Counter(header)
    missing = [" | ".join(group) for group in needs if not any(n in counts for n in group)]
    if missing:
        return "missing: " + ", ".join(missing)
    twice = sorted({n for group in needs for n in group if counts[n] > 1})
    return "named twice: " + ", ".join(twice) if twice else None


# ---------------------------------------------------------------------------------------------- Stripe
# Reporting categories as documented (docs.stripe.com/reports/reporting-categories), without the Issuing
# ones: card-issuing movements are no payment business of the merchant's and are quarantined as unknown.
STRIPE_CATEGORIES = set(
    "charge charge_failure dispute dispute_reversal partial_capture_reversal refund refund_failure "
    "anticipation_repayment climate_order_purchase climate_order_refund contribution fee other_adjustment "
    "payment_network_reserve_hold payment_network_reserve_release payout payout_reversal risk_reserved_funds tax "
    "topup topup_reversal unreconciled_customer_funds advance advance_funding connect_collection_transfer "
    "connect_reserved_funds platform_earning platform_earning_refund transfer transfer_reversal".split())
# Balance transaction types (the API's BalanceTransaction.type), without Issuing and obligations.
STRIPE_TYPES = set(
    "adjustment advance advance_funding anticipation_repayment application_fee application_fee_refund charge "
    "climate_order_purchase climate_order_refund connect_collection_transfer contribution network_cost payment "
    "payment_failure_refund payment_network_reserve_hold payment_network_reserve_release payment_refund "
    "payment_reversal payment_unreconciled payout payout_cancel payout_failure payout_minimum_balance_hold "
    "payout_minimum_balance_release refund refund_failure reserve_transaction reserved_funds stripe_fee "
    "stripe_fx_fee tax_fee topup topup_reversal transfer transfer_cancel transfer_failure transfer_refund".split())
# Rows that are (or undo) a customer payment must name the Stripe object behind them, or they cannot be
# matched: the parsers quarantine them without one.
STRIPE_NEEDS_OBJECT = {"charge", "refund", "dispute", "dispute_reversal"}
STRIPE_HISTORY_NEEDS_SOURCE = {"charge", "payment", "refund", "payment_refund", "payout"}


def _presentment(check: _Check, rec: Rec) -> None:
    """``customer_facing_amount`` in ``customer_facing_currency``: when both are given, a real amount."""
    amount, ccy = rec.get("customer_facing_amount"), rec.get("customer_facing_currency")
    if amount and ccy:
        _, exp = _currency(check, ccy, "customer_facing_currency")
        _amount(check, amount, exp, "customer_facing_amount")


def stripe_itemized(fmt: str, header: list[str], recs: list[Rec]) -> Expected:
    """Signed major-unit gross and net, fee a positive cost, ``net = gross - fee``; amount = gross."""
    needs = [("balance_transaction_id",), ("currency",), ("gross",), ("fee",), ("net",), ("reporting_category",),
             ("created_utc", "created", "effective_at_utc", "effective_at")]
    out = Expected(fmt, refused=_refused(header, needs))
    for rec in recs:
        check = _Check()
        check.bad(rec.width != len(header), "width")
        code, exp = _currency(check, rec.get("currency"), "currency")
        gross, fee, net = (_amount(check, rec.fields.get(n, ""), exp, n) for n in ("gross", "fee", "net"))
        check.bad(not rec.get("balance_transaction_id"), "no balance_transaction_id")
        _presentment(check, rec)
        category = rec.get("reporting_category").lower()
        check.bad(category not in STRIPE_CATEGORIES, f"reporting_category {category!r}")
        created = rec.get("created_utc", "created", "effective_at_utc", "effective_at")
        check.bad(timestamp(created, "%Y-%m-%d %H:%M:%S") is None, f"created {created!r}")
        check.bad(category in STRIPE_NEEDS_OBJECT and not rec.get("source_id", "charge_id"), "no source_id/charge_id")
        check.bad(None not in (gross, fee, net) and gross - fee != net, "gross - fee != net")
        out.outcomes.append(check.outcome(rec.ordinal, gross, net, code))
    return out


def _money_column(header: list[str], name: str) -> list[str]:
    """``Amount`` or ``Amount (MYR)``: the history export may put the currency into the amount headers."""
    return [h for h in header if re.fullmatch(rf"{name}(_[a-z]{{3}})?", h)]


def stripe_history(fmt: str, header: list[str], recs: list[Rec]) -> Expected:
    """The Dashboard's balance history export: signed Amount and Net, Fee a positive cost, Net = Amount - Fee."""
    money = {n: _money_column(header, n) for n in ("amount", "fee", "net")}
    needs = [("id",), ("type",), ("source",), ("currency",), ("created_utc", "created"),
             *[tuple(cols) or (n,) for n, cols in money.items()]]
    out = Expected(fmt, refused=_refused(header, needs))
    for rec in recs:
        check = _Check()
        check.bad(rec.width != len(header), "width")
        code, exp = _currency(check, rec.get("currency"), "currency")
        amount, fee, net = (_amount(check, rec.get(*money[n]), exp, n) for n in ("amount", "fee", "net"))
        check.bad(not rec.get("id"), "no id")
        _presentment(check, rec)
        kind = rec.get("type").lower()
        check.bad(kind not in STRIPE_TYPES, f"type {kind!r}")
        created = rec.get("created_utc", "created")
        check.bad(timestamp(created, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M") is None, f"created {created!r}")
        check.bad(kind in STRIPE_HISTORY_NEEDS_SOURCE and not rec.get("source"), "no source")
        check.bad(None not in (amount, fee, net) and amount - fee != net, "amount - fee != net")
        out.outcomes.append(check.outcome(rec.ordinal, amount, net, code))
    return out


# ----------------------------------------------------------------------------------------------- Adyen
# Journal types of the settlement details report (Adyen's report structure page); the transaction types
# carry a PSP reference and a gross amount in the transaction currency.
ADYEN_TRANSACTIONS = {"settled", "refunded", "chargeback", "secondchargeback", "chargebackreversed"}
ADYEN_TYPES = ADYEN_TRANSACTIONS | set(
    "fee misccosts merchantpayout refundedreversed depositcorrection invoicededuction matchedstatement "
    "manualcorrected bankinstructionreturned epapaid balancetransfer paymentcost paidout paidoutreversed".split())
# Types named in other Adyen reports (external settlement, bulk settlement): the reference knows their
# names only, not how the parser books them.
ADYEN_OTHER_TYPES = set("acquirerpayout settledbulk bulksettlement settledexternallywithinfo "
                        "chargebackexternallywithinfo refundedexternallywithinfo "
                        "chargebackreversedexternallywithinfo".split())
ADYEN_FEES = ("commission_nc", "markup_nc", "scheme_fees_nc", "interchange_nc", "payment_fees_nc", "dcc_markup_nc")


def adyen(fmt: str, header: list[str], recs: list[Rec]) -> Expected:
    """Unsigned Debit/Credit pairs. In the settlement (net) currency: net = Net Credit - Net Debit, fees =
    Commission + Markup + Scheme Fees + Interchange (+ Payment Fees, DCC Markup), amount = net + fees (the
    gross the fees were taken from). A transaction's gross (transaction currency) x Exchange Rate - fees =
    net, to a minor unit. Control total: the batch's rows, its MerchantPayout row included, net to zero."""
    needs = [("type",), ("net_currency",), ("net_debit_nc",), ("net_credit_nc",), ("batch_number",),
             ("psp_reference",), ("creation_date", "creation_date_ams"), ("timezone",)]
    out = Expected(fmt, refused=_refused(header, needs))
    nets, payouts, unreadable = [], 0, False
    for rec in recs:
        check = _Check()
        check.bad(rec.width != len(header), "width")
        kind = re.sub(r"\s+", "", rec.get("type")).lower()
        known_type = kind in ADYEN_TYPES
        check.bad(not known_type and kind not in ADYEN_OTHER_TYPES, f"type {kind!r}")
        check.unsure(kind in ADYEN_OTHER_TYPES, f"type {kind!r}")
        code, exp = _currency(check, rec.get("net_currency"), "Net Currency")
        credit = _amount(check, rec.fields.get("net_credit_nc", ""), exp, "Net Credit", empty_is_zero=True)
        debit = _amount(check, rec.fields.get("net_debit_nc", ""), exp, "Net Debit", empty_is_zero=True)
        fees = [_amount(check, rec.fields.get(n, ""), exp, n, empty_is_zero=True) for n in ADYEN_FEES]
        gross_text = rec.get("gross_credit_gc") or rec.get("gross_debit_gc")
        has_gross = bool(rec.get("gross_currency") and gross_text)
        gross = None
        if has_gross:
            _, gexp = _currency(check, rec.get("gross_currency"), "Gross Currency")
            gc = _amount(check, rec.fields.get("gross_credit_gc", ""), gexp, "Gross Credit", empty_is_zero=True)
            gd = _amount(check, rec.fields.get("gross_debit_gc", ""), gexp, "Gross Debit", empty_is_zero=True)
            gross = (gc - gd, gexp) if None not in (gc, gd) else None
        if rec.get("creation_date"):
            when, zone = rec.get("creation_date"), rec.get("timezone").upper()
        else:
            when, zone = rec.get("creation_date_ams"), "CET"
        check.bad(timestamp(when, "%Y-%m-%d %H:%M:%S") is None, f"Creation Date {when!r}")
        check.unsure(zone not in TZ_ABBREVIATIONS, f"TimeZone {zone!r}")
        check.bad(kind in ADYEN_TRANSACTIONS and not rec.get("psp_reference"), "no Psp Reference")
        check.bad(not rec.get("batch_number"), "no Batch Number")
        net = credit - debit if None not in (credit, debit) else None
        fee = sum(fees) if None not in fees else None
        rate = major(rec.get("exchange_rate")) if rec.get("exchange_rate") else None
        if kind in ADYEN_TRANSACTIONS and gross is not None and rate is not None and None not in (net, fee):
            converted = (Decimal(abs(gross[0])).scaleb(-gross[1]) * rate).scaleb(exp).quantize(
                Decimal(1), rounding=ROUND_HALF_UP)
            expected = converted - fee if net >= 0 else converted + fee
            check.bad(abs(abs(net) - expected) > 1, "gross x rate - fees != net")
        out.outcomes.append(check.outcome(rec.ordinal, None if net is None or fee is None else net + fee, net, code))
        # The batch total counts every row whose net was read, also one quarantined for another reason. A
        # row of a known type whose amounts cannot all be read makes the total unverifiable; a row of a type
        # the parser does not book is quarantined for its type first, and counts when its net was read.
        payouts += kind == "merchantpayout"
        if exp is None and not exponent(rec.get("net_currency"))[2]:
            out.control_known = False                  # a currency outside the reference's table
        amounts_read = exp is not None and net is not None and fee is not None and (not has_gross or gross is not None)
        if rec.width != len(header) or (known_type and not amounts_read):
            unreadable = True
        elif kind in ADYEN_OTHER_TYPES and not amounts_read:
            out.control_known = False
        elif net is not None:
            nets.append(net)
    out.control = None if unreadable or payouts != 1 else sum(nets) == 0
    return out


# ---------------------------------------------------------------------------------------------- PayPal
PAYPAL_RECORDS = {"RH", "FH", "SH", "CH", "SB", "SF", "SC", "RF", "RC", "FF"}
# Transaction event code families (PayPal "Transaction event codes": T00 payments ... T99 other).
PAYPAL_FAMILIES = {f"T{n:02d}" for n in range(0, 23)} | {"T30", "T50", "T97", "T98", "T99"}
PAYPAL_NO_MONEY = {"T13"}           # authorisations, reauthorisations, voids


def _hundredths(text: str, exp: int | None) -> int | None:
    """PayPal writes every amount as an unsigned integer in hundredths, whatever the currency ("100,00 yen
    and $100.00 USD are both represented as 10000"): in ISO minor units, when whole."""
    text = (text or "").strip()
    if exp is None or not re.fullmatch(r"\d{1,17}", text):
        return None
    units = int(text)
    if exp >= 2:
        return units * 10 ** (exp - 2)
    return units // 10 ** (2 - exp) if units % 10 ** (2 - exp) == 0 else None


def paypal(rows: list[list[str]]) -> Expected:
    """STL / TRR: every line starts with its record type; ``SB`` rows are the records (ordinal: position
    among them), named by the ``CH`` record. Gross CR = money in; fee DR = a cost, CR = a fee given back;
    net = gross - fee. T13xx (authorisations, voids) and, in a TRR, pending (P) or denied (D) rows move
    no money. Control totals: per section (``SH``) and currency the SB rows' gross CR/DR and fee CR/DR
    equal the ``SF`` footer, the section's SB count equals ``SC``, and for the whole report ``RF`` and
    ``RC`` likewise. (The ``FF`` record count is not one of the checks the parser promises.)"""
    kinds = [(row[0].strip().upper() if row else "") for row in rows]
    ch = next((row for row, k in zip(rows, kinds) if k == "CH"), None)
    header = [key(h) for h in ch[1:]] if ch else []
    fmt = "paypal.trr" if "transactional_status" in header else "paypal.stl"
    needs = [("transaction_id",), ("transaction_event_code",), ("transaction_debit_or_credit",),
             ("gross_transaction_amount",), ("gross_transaction_currency",)]
    out = Expected(fmt, refused=None if ch else "no CH record")
    if ch:
        out.refused = _refused(header, needs)
    section, ordinal = 0, 0
    sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    counts: Counter = Counter()
    footers: list[tuple[int, str, list[str]]] = []
    unreadable = unsure = False
    for row, kind in zip(rows, kinds):
        if kind == "SH":
            section += 1
        if kind in ("SF", "SC", "RF", "RC"):
            footers.append((section, kind, row))
        if kind != "SB":
            continue
        ordinal += 1
        rec = Rec(ordinal, {n: v for n, v in reversed(list(zip(header, row[1:])))}, len(row))
        check = _Check()
        check.bad(len(row) != len(ch or []), "width")
        check.bad(not rec.get("transaction_id"), "no Transaction ID")
        code, exp = _currency(check, rec.get("gross_transaction_currency"), "gross currency")
        gross = _hundredths(rec.get("gross_transaction_amount"), exp)
        check.bad(exp is not None and gross is None, "gross amount")
        dc = rec.get("transaction_debit_or_credit").upper()
        check.bad(dc not in ("CR", "DR"), f"gross CR/DR {dc!r}")
        fee_text, fee_dc = rec.get("fee_amount"), rec.get("fee_debit_or_credit").upper()
        fee, fee_exp = 0, exp
        if fee_text:
            fee_code, fee_exp = _currency(check, rec.get("fee_currency") or code, "fee currency")
            fee = _hundredths(fee_text, fee_exp)
            check.bad(fee_exp is not None and fee is None, "fee amount")
            check.bad(fee_dc not in ("CR", "DR"), f"fee CR/DR {fee_dc!r}")
            check.bad(fee_code != code, "fee currency differs from the gross currency")
        event_code = rec.get("transaction_event_code").upper()
        check.bad(event_code[:3] not in PAYPAL_FAMILIES, f"event code {event_code!r}")
        when = rec.get("transaction_completion_date", "transaction_initiation_date")
        check.bad(not re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [+-]\d{4}", when)
                  or timestamp(when[:19], "%Y/%m/%d %H:%M:%S") is None, f"date {when!r}")
        no_money = event_code[:3] in PAYPAL_NO_MONEY or rec.get("transactional_status").upper() in ("P", "D")
        amount = None
        if gross is not None and fee is not None and dc in ("CR", "DR") and (not fee_text or fee_dc in ("CR", "DR")):
            amount = gross if dc == "CR" else -gross
            fee = fee if fee_dc == "DR" else -fee
        out.outcomes.append(check.outcome(ordinal, amount, None if amount is None else amount - fee, code,
                                          skipped=no_money))
        # Footer sums, in PayPal's own units (hundredths), by the gross currency. A row whose amounts cannot
        # be read (wrong width, unknown currency, not digits, no CR/DR) makes the footers unverifiable; when
        # the same row also lacks its id or has a JPY amount that is not whole, which problem the parser
        # names first (and so whether it counts the row as unreadable) is its choice: not compared.
        gross_units, fee_units = rec.get("gross_transaction_amount"), fee_text
        digits = re.compile(r"\d{1,17}")
        readable = (len(row) == len(ch or []) and exp is not None and digits.fullmatch(gross_units) is not None
                    and dc in ("CR", "DR")
                    and (not fee_text or (digits.fullmatch(fee_units) is not None and fee_dc in ("CR", "DR")
                                          and fee_exp is not None)))
        outside_table = (exp is None and not exponent(rec.get("gross_transaction_currency"))[2]) or (
            fee_text and fee_exp is None and not exponent(rec.get("fee_currency") or code)[2])
        not_whole = (exp is not None and digits.fullmatch(gross_units) and gross is None) or (
            fee_text and fee_exp is not None and digits.fullmatch(fee_units) and fee is None)
        if outside_table:
            unsure = True                              # a currency outside the reference's table
        elif not readable:
            if len(row) != len(ch or []):
                unreadable = True
            elif rec.get("transaction_id") and not not_whole:
                unreadable = True
            else:
                unsure = True
        counts[section] += 1
        total = sums[(section, code)]
        if digits.fullmatch(gross_units) and dc in ("CR", "DR"):
            total[0 if dc == "CR" else 1] += int(gross_units)
        if fee_text and digits.fullmatch(fee_units) and fee_dc in ("CR", "DR"):
            total[2 if fee_dc == "CR" else 3] += int(fee_units)
    report: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (_, code), values in sums.items():
        report[code] = [a + b for a, b in zip(report[code], values)]
    checked, problems = 0, 0
    for sec, kind, row in footers:
        if kind in ("SF", "RF") and len(row) >= 6:
            code = row[1].strip().upper()
            stated = [int(x.strip()) if x.strip().isdigit() else None for x in row[2:6]]
            actual = sums.get((sec, code), [0, 0, 0, 0]) if kind == "SF" else report.get(code, [0, 0, 0, 0])
            checked += 1
            problems += stated != actual
        elif kind in ("SC", "RC") and len(row) >= 2:
            stated = int(row[1].strip()) if row[1].strip().isdigit() else None
            checked += 1
            problems += stated != (counts[sec] if kind == "SC" else sum(counts.values()))
    out.control = None if unreadable or not checked else problems == 0
    out.control_known = not unsure
    return out


# ------------------------------------------------------------------------------------------- Braintree
BRAINTREE_SETTLED = {"settled", "settling", "submitted_for_settlement", "settlement_pending", "settlement_confirmed"}
BRAINTREE_NOT_SETTLED = {"authorized", "authorizing", "authorization_expired", "processor_declined",
                         "gateway_rejected", "failed", "voided", "settlement_declined"}


def braintree(fmt: str, header: list[str], recs: list[Rec]) -> Expected:
    """sale = money in, credit (a refund, naming the sale in Refunded Transaction ID) = money out; positive
    major units. Settled money only: the other statuses (authorised, voided, declined...) move none. The
    amount is the Settlement Amount in its currency when given, else Amount Submitted For Settlement (or
    Amount Authorized) in Currency ISO Code; a marketplace Service Fee (transaction currency) is the fee."""
    needs = [("transaction_id",), ("transaction_type",), ("transaction_status",), ("currency_iso_code",),
             ("amount_submitted_for_settlement", "amount_authorized"), ("created_datetime",)]
    out = Expected(fmt, refused=_refused(header, needs))
    for rec in recs:
        check = _Check()
        check.bad(rec.width != len(header), "width")
        check.bad(not rec.get("transaction_id"), "no Transaction ID")
        kind, status = rec.get("transaction_type").lower(), rec.get("transaction_status").lower()
        check.bad(kind not in ("sale", "credit"), f"type {kind!r}")
        check.bad(status not in BRAINTREE_SETTLED | BRAINTREE_NOT_SETTLED, f"status {status!r}")
        if check.invalid or status not in BRAINTREE_SETTLED:
            out.outcomes.append(check.outcome(rec.ordinal, skipped=True))
            continue
        tcode, texp = _currency(check, rec.get("currency_iso_code"), "Currency ISO Code")
        submitted = _amount(check, rec.get("amount_submitted_for_settlement", "amount_authorized"), texp, "amount")
        if rec.get("settlement_amount") and rec.get("settlement_currency_iso_code"):
            code, exp = _currency(check, rec.get("settlement_currency_iso_code"), "Settlement Currency ISO Code")
            amount = _amount(check, rec.get("settlement_amount"), exp, "Settlement Amount")
        else:
            code, amount = tcode, submitted
        fee = _amount(check, rec.get("service_fee"), texp, "Service Fee", empty_is_zero=True)
        zone = rec.get("created_timezone").upper() or "UTC"
        check.bad(timestamp(rec.get("created_datetime"), "%Y-%m-%d %H:%M:%S") is None, "Created Datetime")
        check.unsure(zone not in TZ_ABBREVIATIONS, f"Created Timezone {zone!r}")
        check.bad(kind == "credit" and not rec.get("refunded_transaction_id"), "credit without Refunded Transaction ID")
        sign = 1 if kind == "sale" else -1
        signed = None if amount is None else sign * amount
        fee = fee if code == tcode else 0
        out.outcomes.append(check.outcome(rec.ordinal, signed, None if signed is None or fee is None else signed - fee,
                                          code))
    return out


# -------------------------------------------------------------------------------------------- Checkout
# Settlement Breakdown types seen in Checkout.com's documentation and samples; others are ``unchecked``.
CHECKOUT_TYPES = {"charge", "refund", "chargeback", "network token provisioning", "network token update",
                  "account updater"}
CHECKOUT_PAYMENT_TYPES = {"charge", "refund", "chargeback"}
CHECKOUT_FEE_PARTS = ("processing_fee_in_holding_currency", "scheme_fee_in_holding_currency",
                      "interchange_in_holding_currency", "tax_in_holding_currency", "reserve_in_holding_currency")
CHECKOUT_TIME = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def _checkout_time(text: str) -> datetime | None:
    text = (text or "").strip()
    text = text[:-1] if text.endswith("Z") else text
    if re.search(r"\.\d{4,}$", text):           # milliseconds, as the reports write them
        return None
    return timestamp(text, *CHECKOUT_TIME)


def checkout_breakdown(fmt: str, header: list[str], recs: list[Rec]) -> Expected:
    """Signed major units in the holding currency, fees negative deductions: Gross + Deduction = Net;
    amount = gross."""
    needs = [("type",), ("payment_id", "action_id"), ("holding_currency",), ("payout_id",),
             ("gross_in_holding_currency",), ("deduction_in_holding_currency",), ("net_in_holding_currency",),
             ("processed_on",)]
    out = Expected(fmt, refused=_refused(header, needs))
    for rec in recs:
        check = _Check()
        check.bad(rec.width != len(header), "width")
        kind = rec.get("type").lower()
        check.unsure(kind not in CHECKOUT_TYPES, f"type {kind!r}")
        code, exp = _currency(check, rec.get("holding_currency"), "Holding Currency")
        gross = _amount(check, rec.get("gross_in_holding_currency"), exp, "gross", empty_is_zero=True)
        deduction = _amount(check, rec.get("deduction_in_holding_currency"), exp, "deduction", empty_is_zero=True)
        net = _amount(check, rec.get("net_in_holding_currency"), exp, "net")
        for part in CHECKOUT_FEE_PARTS:
            _amount(check, rec.get(part), exp, part, empty_is_zero=True)
        pccy = rec.get("processing_currency")
        if pccy and pccy.upper() != code:
            _, pexp = _currency(check, pccy, "Processing Currency")
            _amount(check, rec.get("gross_in_processing_currency"), pexp, "gross (processing)", empty_is_zero=True)
        check.bad(kind in CHECKOUT_PAYMENT_TYPES and not rec.get("payment_id", "action_id"), "no Payment ID")
        check.bad(not rec.get("payout_id"), "no Payout ID")
        check.bad(_checkout_time(rec.get("processed_on")) is None, "Processed On")
        check.bad(None not in (gross, deduction, net) and gross + deduction != net, "gross + deduction != net")
        out.outcomes.append(check.outcome(rec.ordinal, gross, net, code))
    return out


# The Payouts report's identifying columns (docs.checkout.com, payouts report); every other column is a
# component of the Payout Amount (payments, refunds, fees... signed), and they add up to it.
CHECKOUT_PAYOUT_IDS = {"client_entity_id", "client_entity_name", "sub_entity_id", "sub_entity_name",
                       "currency_account_id", "currency_account_name", "holding_currency", "payout_id", "payout_date",
                       "reporting_start_date", "reporting_end_date", "payout_amount"}


def checkout_payouts(fmt: str, header: list[str], recs: list[Rec]) -> Expected:
    """One row per payout: the Payout Amount leaves the balance for the bank (amount = net = -Payout
    Amount). Control total: each row's components add up to its Payout Amount; a file with a row that
    does not is held back, unless a row cannot be read at all (then not verifiable: None)."""
    needs = [("payout_id",), ("payout_amount",), ("holding_currency",), ("payout_date",)]
    out = Expected(fmt, refused=_refused(header, needs))
    components = [h for h in header if h and h not in CHECKOUT_PAYOUT_IDS]
    unreadable, adds_up = False, True
    for rec in recs:
        check = _Check()
        check.bad(rec.width != len(header), "width")
        check.bad(not rec.get("payout_id"), "no Payout ID")
        code, exp = _currency(check, rec.get("holding_currency"), "Holding Currency")
        stated = _amount(check, rec.get("payout_amount"), exp, "Payout Amount")
        parts = [major(rec.get(c) or "0") for c in components]
        check.bad(None in parts, "component")
        check.bad(_checkout_time(rec.get("payout_date")) is None, "Payout Date")
        total = major(rec.get("payout_amount"))
        check.bad(bool(components) and None not in parts and total is not None and sum(parts, Decimal(0)) != total,
                  "components != Payout Amount")
        out.outcomes.append(check.outcome(rec.ordinal, None if stated is None else -stated,
                                          None if stated is None else -stated, code))
        # The verdict follows each row's first problem, in the order the fields are checked above: a row
        # that cannot be read (width, currency, a payout amount or component that is not a number) makes
        # it None, a row whose components do not add up makes it False (a missing id, an amount with too
        # many decimals or a bad date come first and hide the sum).
        first = check.invalid or ""
        if first == "width" or first == "component" or (first.startswith(("Holding Currency", "Payout Amount"))
                                                        and (exp is None or total is None)):
            unreadable = True
        elif first == "components != Payout Amount":
            adds_up = False
        if check.unchecked:
            out.control_known = False
    out.control = None if unreadable else adds_up
    return out


# ---------------------------------------------------------------------------------------------- files
def identify(header: list[str]) -> str | None:
    """The format a header names (the reference's own reading of it)."""
    names = set(header)
    if {"balance_transaction_id", "reporting_category"} <= names:
        automatic = any(h.startswith("automatic_payout") for h in names)
        return "stripe.payout_reconciliation_itemized" if automatic else "stripe.balance_report_itemized"
    if {"id", "type", "source"} <= names and all(_money_column(header, n) for n in ("amount", "fee", "net")):
        return "stripe.balance_history"
    if {"merchant_account", "batch_number", "type"} <= names:
        return "adyen.settlement_details"
    if {"transaction_id", "transaction_type", "transaction_status"} <= names:
        return "braintree.transactions"
    if {"payout_id", "net_in_holding_currency"} <= names:
        return "checkout.settlement_breakdown"
    if {"payout_id", "payout_amount"} <= names:
        return "checkout.payouts"
    return None


RULES = {
    "stripe.payout_reconciliation_itemized": stripe_itemized, "stripe.balance_report_itemized": stripe_itemized,
    "stripe.balance_history": stripe_history, "adyen.settlement_details": adyen,
    "braintree.transactions": braintree, "checkout.settlement_breakdown": checkout_breakdown,
    "checkout.payouts": checkout_payouts,
}
FORMATS = (*RULES, "paypal.stl", "paypal.trr")


def expect_rows(rows: list[list[str]]) -> Expected | None:
    """The reference's expectation for a file given as its non-blank records (header first); None when it
    is none of the PSP formats above."""
    if not rows:
        return None
    if rows[0] and rows[0][0].strip().upper() in PAYPAL_RECORDS:
        return paypal(rows)
    header, recs = _table(rows)
    fmt = identify(header)
    return RULES[fmt](fmt, header, recs) if fmt else None


def expect(data: bytes) -> Expected | None:
    """For a delivered CSV file."""
    return expect_rows(csvfile.rows(data))


def expect_workbook(data: bytes) -> Expected | None:
    """For a delivered XLSX workbook: its first sheet, as openpyxl reads it."""
    from reference import xlsx_sheet

    return expect_rows(xlsx_sheet.rows(data))
