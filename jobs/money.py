"""Money: ISO 4217 minor-unit exponents and exact conversions. Never a float.

Amounts are carried as integer minor units (``int`` in Python, ``LongType`` in Spark) with their
currency; major-unit decimal strings are converted exactly, and a value with more decimals than the
currency allows is an error, not a rounding.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 active codes with their minor-unit exponent (the standard's "minor unit" column).
# Exponent 2 is the default and most codes have it; exceptions are listed explicitly below.
_EXPONENT_0 = (
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
).split()
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND".split()
_EXPONENT_4 = "CLF UYW".split()
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
    "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD "
    "MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR "
    "PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP "
    "TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
).split()

CURRENCY_EXPONENTS: dict[str, int] = {
    **{c: 2 for c in _EXPONENT_2},
    **{c: 0 for c in _EXPONENT_0},
    **{c: 3 for c in _EXPONENT_3},
    **{c: 4 for c in _EXPONENT_4},
}


# ISO 4217 codes withdrawn from use (the standard's list three, historic denominations): the euro's legacy
# currencies (DEM, FRF, NLG, ITL, ESP, BEF, ATS, PTE, FIM, IEP, GRD, LUF, CYP, MTL, SIT, SKK, EEK, LVL, LTL, HRK),
# the ECU (XEU) and redenominated ones (VEB, VEF, TRL, ROL, ...). An amount in one of them is not converted: a
# parser names it (WITHDRAWN_CURRENCY) instead of calling it unknown.
WITHDRAWN_CURRENCIES: frozenset[str] = frozenset(
    "ADP AFA ALK AOK AON AOR ARA ARP ARY ATS AYM AZM BAD BEC BEF BEL BGJ BGK BGL BOP BRB BRC BRE BRN BRR BUK BYB BYR "
    "CHC CSD CSJ CSK CYP DDM DEM ECS ECV EEK ESA ESB ESP FIM FRF GEK GHC GHP GNE GNS GQE GRD GWE GWP HRD HRK IEP ILP "
    "ILR ISJ ITL LAJ LSM LTL LTT LUC LUF LUL LVL LVR MGF MKN MLF MRO MTL MTP MVQ MXP MZE MZM NIC NLG PEH PEI PES PLZ "
    "PTE RHD ROK ROL RUR SDD SDP SIT SKK SRG STD SUR TJR TMM TPE TRL UAK UGS UGW USS UYN UYP VEB VEF VNC XEU XFO XFU "
    "XRE YDD YUD YUM YUN ZAL ZMK ZRN ZRZ ZWC ZWD ZWN ZWR".split()
) - frozenset(CURRENCY_EXPONENTS)


class MoneyError(ValueError):
    pass


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency.strip().upper()]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r} (not an ISO 4217 code)") from None


def to_minor(amount: str | Decimal | int, currency: str) -> int:
    """Exact major-unit amount -> integer minor units; refuses sub-minor precision."""
    exp = exponent(currency)
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount).strip())
    except InvalidOperation:
        raise MoneyError(f"not a decimal amount: {amount!r}") from None
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more decimals than {currency.upper()} allows ({exp})")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """Integer minor units -> exact Decimal in major units (for display and file writing)."""
    return Decimal(minor).scaleb(-exponent(currency))


def format_minor(minor: int, currency: str, decimal_separator: str = ".") -> str:
    """Minor units as a plain major-unit string with exactly the currency's decimals: 1234 USD -> '12.34'."""
    exp = exponent(currency)
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(exp + 1, "0")
    if exp == 0:
        return sign + digits
    return f"{sign}{digits[:-exp]}{decimal_separator}{digits[-exp:]}"
