"""Writer: ISO 20022 camt.053.001.02 bank statement, one file per delivery day, one Stmt per account.

Booked balances chain day to day (OPBD of D = CLBD of D-1; CLBD = OPBD + credits - debits). A PSP
payout is one Ntry: CRDT (PMNT/RCDT/ESCT) or, when negative, DBIT (PMNT/RDDT/ESDD), with the payout
reference in EndToEndId, RmtInf/Ustrd and AddtlNtryInf.
"""
from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from jobs.generate import refs
from jobs.generate.adyen import AdyenBatches
from jobs.generate.bank import PAYOUT, UNRELATED_PARTIES, UNRELATED_TEXT, BankEntries, Payouts
from jobs.generate.dates import to_date
from jobs.generate.ids import digits_from_hash, hash64
from jobs.generate.stripe import StripePayouts
from jobs.generate.world import (ADYEN, ADYEN_BANK_NAME, ADYEN_IBAN, CCYS, STRIPE, STRIPE_BANK_NAME, STRIPE_IBAN,
                                 TenantWorld)
from jobs.money import format_minor

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def file_name(day: int) -> str:
    return f"camt053_{to_date(day).isoformat()}.xml"


def _amt(minor: int, ccy: str) -> str:
    return f'<Amt Ccy="{ccy}">{format_minor(abs(int(minor)), ccy)}</Amt>'


def _bal(code: str, minor: int, ccy: str, day: str) -> str:
    ind = "CRDT" if minor >= 0 else "DBIT"
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>{_amt(minor, ccy)}<CdtDbtInd>{ind}</CdtDbtInd>"
            f"<Dt><Dt>{day}</Dt></Dt></Bal>")


def _entry_texts(w: TenantWorld, e: BankEntries, i: int, payouts: Payouts, sp: StripePayouts,
                 ab: AdyenBatches, others: dict | None = None) -> tuple[str, str, str, str, str]:
    """(counterparty name, counterparty IBAN, EndToEndId, Ustrd, AddtlNtryInf). ``others``: PSP code ->
    StripePayouts of PayPal, Braintree, Checkout.com."""
    if e.source[i] != PAYOUT:
        party = UNRELATED_PARTIES[int(e.party[i])]
        ustrd = UNRELATED_TEXT[int(e.number[i]) % len(UNRELATED_TEXT)].format(n=int(e.number[i]))
        return party, "", "NOTPROVIDED", ustrd, f"SEPA CREDIT TRANSFER {party}"
    k = int(e.payout[i])
    j = np.array([payouts.index[k]])
    if payouts.psp[k] not in (STRIPE, ADYEN):
        from jobs.generate.bank_text import other_psp_texts

        return other_psp_texts(w, int(payouts.psp[k]), others[int(payouts.psp[k])], int(j[0]))
    if payouts.psp[k] == STRIPE:
        po = refs.payout_ids(w.salt, sp.serial[j])[0].as_py()
        trace = refs.trace_ids(w.salt, sp.serial[j])[0].as_py()
        return STRIPE_BANK_NAME, STRIPE_IBAN, trace, f"STRIPE {po}", f"SEPA TRANSFER {STRIPE_BANK_NAME} {trace}"
    number = int(ab.number[j][0])
    tx = refs.adyen_tx_refs(w.salt, np.array([number]))[0].as_py()
    return (ADYEN_BANK_NAME, ADYEN_IBAN, tx, f"{tx} batch {number}, {w.merchant_account}",
            f"SEPA CREDIT TRANSFER {ADYEN_BANK_NAME} {tx}")


def _ntry(w: TenantWorld, e: BankEntries, i: int, seq: int, payouts, sp, ab, others=None) -> str:
    day = to_date(int(e.day[i]))
    ccy = CCYS[int(e.acct[i])]
    credit = e.amount[i] > 0
    name, iban, e2e, ustrd, addtl = (escape(x) for x in _entry_texts(w, e, i, payouts, sp, ab, others))
    ymd = day.strftime("%Y%m%d")
    key = np.array([int(e.day[i]) * 1000 + seq])
    svcr = f"{ymd}{int(digits_from_hash(hash64(w.salt, 'acctsvcr', key), 11)[0]):011d}"
    party_tag = "Dbtr" if credit else "Cdtr"
    party = f"<{party_tag}><Nm>{name}</Nm></{party_tag}>"
    if iban:
        party += f"<{party_tag}Acct><Id><IBAN>{iban}</IBAN></Id></{party_tag}Acct>"
    fam = "<Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd>" if credit else "<Cd>RDDT</Cd><SubFmlyCd>ESDD</SubFmlyCd>"
    return (f"<Ntry><NtryRef>{ymd}-{seq:06d}</NtryRef>{_amt(e.amount[i], ccy)}"
            f"<CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{day.isoformat()}</Dt></BookgDt><ValDt><Dt>{day.isoformat()}</Dt></ValDt>"
            f"<AcctSvcrRef>{svcr}</AcctSvcrRef>"
            f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly>{fam}</Fmly></Domn></BkTxCd>"
            f"<NtryDtls><TxDtls><Refs><AcctSvcrRef>{svcr}</AcctSvcrRef><EndToEndId>{e2e}</EndToEndId></Refs>"
            f"<AmtDtls><TxAmt>{_amt(e.amount[i], ccy)}</TxAmt></AmtDtls>"
            f"<RltdPties>{party}</RltdPties><RmtInf><Ustrd>{ustrd}</Ustrd></RmtInf></TxDtls></NtryDtls>"
            f"<AddtlNtryInf>{addtl}</AddtlNtryInf></Ntry>")


def write(path: Path, w: TenantWorld, day: int, e: BankEntries, rows: np.ndarray, opening: dict[int, int],
          payouts: Payouts, sp: StripePayouts, ab: AdyenBatches, others: dict | None = None) -> dict[int, int]:
    """Write day ``day``'s statement with entries ``rows`` (indices into e, in document order);
    return the closing balances per account."""
    d = to_date(day)
    ymd, iso = d.strftime("%Y%m%d"), d.isoformat()
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<Document xmlns="{NS}"><BkToCstmrStmt>',
           f"<GrpHdr><MsgId>CAMT053-{w.tenant.upper()}-{ymd}</MsgId><CreDtTm>{iso}T23:15:00+00:00</CreDtTm>"
           "<MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn></GrpHdr>"]
    closing, seq = {}, 0
    for acct, account in sorted(w.accounts.items()):
        mine = rows[e.acct[rows] == acct]
        amounts = e.amount[mine]
        credits, debits = int(amounts[amounts > 0].sum()), int(-amounts[amounts < 0].sum())
        close = opening[acct] + credits - debits
        closing[acct] = close
        ccy = account.currency
        out.append(
            f"<Stmt><Id>{w.tenant.upper()}-{ccy}-{ymd}</Id><ElctrncSeqNb>{day - 18_262}</ElctrncSeqNb>"
            f"<LglSeqNb>{day - 18_262}</LglSeqNb><CreDtTm>{iso}T23:15:00+00:00</CreDtTm>"
            f"<FrToDt><FrDtTm>{iso}T00:00:00+00:00</FrDtTm><ToDtTm>{iso}T23:59:59+00:00</ToDtTm></FrToDt>"
            f"<Acct><Id><IBAN>{account.iban}</IBAN></Id><Ccy>{ccy}</Ccy><Ownr><Nm>{escape(w.legal_name)}</Nm></Ownr>"
            f"<Svcr><FinInstnId><BIC>{account.bic}</BIC></FinInstnId></Svcr></Acct>"
            + _bal("OPBD", opening[acct], ccy, iso) + _bal("CLBD", close, ccy, iso)
            + f"<TxsSummry><TtlNtries><NbOfNtries>{len(mine)}</NbOfNtries></TtlNtries>"
            f"<TtlCdtNtries><NbOfNtries>{int((amounts > 0).sum())}</NbOfNtries>"
            f"<Sum>{format_minor(credits, ccy)}</Sum></TtlCdtNtries>"
            f"<TtlDbtNtries><NbOfNtries>{int((amounts < 0).sum())}</NbOfNtries>"
            f"<Sum>{format_minor(debits, ccy)}</Sum></TtlDbtNtries></TxsSummry>")
        for i in mine:
            seq += 1
            out.append(_ntry(w, e, int(i), seq, payouts, sp, ab, others))
        out.append("</Stmt>")
    out.append("</BkToCstmrStmt></Document>\n")
    path.write_text("\n".join(out), encoding="utf-8")
    return closing
