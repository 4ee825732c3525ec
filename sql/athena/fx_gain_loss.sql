-- FX gain (positive) or loss (negative) booked per day, PSP and settlement currency: the ledger's fx.difference
-- lines (credit minus debit, minor units).
CREATE OR REPLACE VIEW fx_gain_loss AS
SELECT tenant_id,
       business_date,
       coalesce(psp, 'unknown') AS psp,
       currency,
       count(DISTINCT journal_id) AS journals,
       sum(credit_minor - debit_minor) AS gain_minor
FROM journal
WHERE component = 'fx.difference'
GROUP BY tenant_id, business_date, coalesce(psp, 'unknown'), currency
