-- Finance mart: what is still open after each day's run, per relation, status, reason and currency, aged by the
-- days since the item's due date (expected items not yet due are 'not due'): items and amount (minor units).
CREATE OR REPLACE VIEW recon_marts.open_items_ageing AS
SELECT tenant_id,
       run_date,
       relation,
       status,
       coalesce(reason_code, 'NONE') AS reason_code,
       currency,
       CASE WHEN due_date IS NULL OR due_date >= run_date THEN 'not due'
            WHEN datediff(day, due_date, run_date) <= 7 THEN '1-7 days'
            WHEN datediff(day, due_date, run_date) <= 30 THEN '8-30 days'
            ELSE 'over 30 days' END AS overdue,
       count(*) AS items,
       sum(amount_minor) AS amount_minor
FROM recon_lake.item_status
GROUP BY 1, 2, 3, 4, 5, 6, 7
WITH NO SCHEMA BINDING;
