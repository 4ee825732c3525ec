"""The world model of one tenant: accounts, PSP set-up, currencies, FX rates, settlement timing.

Everything is derived from (seed, tenant name), so the same arguments give the same world.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jobs.generate.ids import text_key
from jobs.money import CURRENCY_EXPONENTS

def iban(country: str, bank: str, account: int | str) -> str:
    """A checksum-valid IBAN (ISO 13616 mod-97) like NL91ABNA0417164300."""
    bban = f"{bank}{account:010d}" if isinstance(account, int) else f"{bank}{account}"
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


CCYS = ["EUR", "USD", "GBP", "JPY"]
EUR, USD, GBP, JPY = range(4)
EXPS = np.array([CURRENCY_EXPONENTS[c] for c in CCYS], dtype=np.int64)
RATE_SCALE = 10**6                   # FX rates are integers in millionths (micro units)
BASE_RATE_TO_EUR = np.array([1_000_000, 862_317, 1_141_893, 5_617], dtype=np.int64)
PSPS = ["stripe", "adyen", "paypal", "braintree", "checkout"]
STRIPE, ADYEN, PAYPAL, BRAINTREE, CHECKOUT = range(5)
PSP_SHARE = {STRIPE: 0.35, ADYEN: 0.25, PAYPAL: 0.15, BRAINTREE: 0.1, CHECKOUT: 0.15}   # when more than two
OFFSETS = ["+00:00", "+01:00", "-05:00", "+02:00", "-08:00", "+05:30", "+09:00"]
OFFSET_SECONDS = np.array([0, 3600, -18_000, 7200, -28_800, 19_800, 32_400], dtype=np.int64)
OFFSET_WEIGHTS = np.array([0.35, 0.3, 0.12, 0.08, 0.07, 0.04, 0.04])
STRIPE_BANK_NAME = "STRIPE PAYMENTS EUROPE LTD"
ADYEN_BANK_NAME = "ADYEN N.V."
STRIPE_IBAN = iban("IE", "SRPE", "99000012345678")
ADYEN_IBAN = iban("NL", "ADYB", 1_000_000_001)
PAYPAL_BANK_NAME = "PAYPAL (EUROPE) S.A R.L. ET CIE, S.C.A."
PAYPAL_IBAN = iban("LU", "PPLX", "0000000000000001")
BRAINTREE_BANK_NAME = "BRAINTREE PAYMENT SOLUTIONS"
BRAINTREE_IBAN = iban("NL", "BNPA", 2_100_000_001)
CHECKOUT_BANK_NAME = "CHECKOUT LTD"
CHECKOUT_IBAN = iban("GB", "CKOU", "40400012345678")


@dataclass(frozen=True)
class BankAccount:
    currency: str
    iban: str
    bic: str
    opening_minor: int


@dataclass(frozen=True)
class TenantWorld:
    tenant: str
    seed: int
    salt: int
    company_account: str
    merchant_account: str
    legal_name: str
    accounts: dict[int, BankAccount] = field(default_factory=dict)   # currency code -> account
    stripe_balances: tuple[int, ...] = (EUR, USD)   # Stripe settles these as is, converts others to EUR
    stripe_payout_lag_bd: int = 2                   # payout effective T+2 business days after the charge day
    stripe_late_lag_bd: int = 0
    adyen_net_currency: int = EUR
    adyen_payout_lag_bd: int = 1                    # bank credit 1 business day after the batch closes
    adyen_batch_base: int = 0
    stripe_share: float = 0.55

    def rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFF, self.salt, *stream]))

    def rates_to_eur(self, ccy: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Integer micro-unit rate (presentment -> EUR) per row, varying a little by day."""
        ccy = np.asarray(ccy, dtype=np.int64)
        day = np.asarray(day, dtype=np.int64)
        wobble = (day * 7919 + ccy * 104_729 + self.salt) % 13 - 6          # -6..6 per mille
        base = BASE_RATE_TO_EUR[ccy]
        rate = base + base * wobble // 1000 + ((day * 31 + ccy) % 97) * (base // 100_000 + 1)
        return np.where(ccy == EUR, RATE_SCALE, rate)


def build_world(tenant: str, seed: int) -> TenantWorld:
    salt = text_key(f"{tenant}:{seed}") & 0x7FFFFFFF
    proper = tenant[:1].upper() + tenant[1:]
    eur_acct = 400_000_000 + salt % 99_999_999
    usd_acct = 500_000_000 + (salt // 7) % 99_999_999
    accounts = {
        0: BankAccount("EUR", iban("NL", "ABNA", eur_acct), "ABNANL2A", 25_000_000 + (salt % 1000) * 1000),
        1: BankAccount("USD", iban("NL", "ABNA", usd_acct), "ABNANL2A", 12_000_000 + (salt % 700) * 1000),
    }
    return TenantWorld(
        tenant=tenant, seed=seed, salt=salt,
        company_account=f"{proper}Co", merchant_account=f"{proper}EU",
        legal_name=f"{tenant.upper()} RETAIL B.V.", accounts=accounts,
        adyen_batch_base=100 + salt % 800,
    )
