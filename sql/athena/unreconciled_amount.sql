-- Items still open after each day's run (expected ones within their window and exceptions), per relation, status
-- and currency: records and signed amount in minor units.
CREATE OR REPLACE VIEW unreconciled_amount AS
SELECT tenant_id,
       run_date,
       relation,
       status,
       currency,
       count(*) AS items,
       sum(amount_minor) AS amount_minor
FROM item_status
GROUP BY tenant_id, run_date, relation, status, currency
