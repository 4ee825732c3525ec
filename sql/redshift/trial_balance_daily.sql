-- Finance mart: the trial balance of each day's posted journals per account and currency (debits, credits and
-- the day's movement, minor units). A late-binding view: Spectrum tables change under it.
CREATE OR REPLACE VIEW recon_marts.trial_balance_daily AS
SELECT tenant_id,
       business_date,
       account,
       currency,
       sum(debit_minor) AS debit_minor,
       sum(credit_minor) AS credit_minor,
       sum(debit_minor) - sum(credit_minor) AS movement_minor
FROM recon_lake.journal
GROUP BY tenant_id, business_date, account, currency
WITH NO SCHEMA BINDING;
