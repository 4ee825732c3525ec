-- Chargebacks, second chargebacks and their reversals as the PSPs reported them, per day, PSP and currency.
-- (The dispute lifecycle itself lives in PostgreSQL: the Reconciliation page and `recon disputes`.)
CREATE OR REPLACE VIEW chargebacks AS
SELECT tenant_id,
       ingest_date,
       coalesce(psp, source) AS psp,
       event_type,
       currency,
       count(*) AS records,
       sum(amount_minor) AS amount_minor
FROM events
WHERE event_type IN ('chargeback', 'second_chargeback', 'chargeback_reversal')
GROUP BY tenant_id, ingest_date, coalesce(psp, source), event_type, currency
