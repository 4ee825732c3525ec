-- Exceptions open after each day's run, by reason and age (days since the record was landed): records (a record
-- open in both relations for the same reason counts once) and their amount in minor units per currency.
CREATE OR REPLACE VIEW open_exceptions AS
SELECT s.tenant_id,
       s.run_date,
       s.reason_code,
       s.currency,
       CASE WHEN e.ingest_date IS NULL THEN 'unknown'
            WHEN date_diff('day', e.ingest_date, s.run_date) <= 7 THEN '0-7 days'
            WHEN date_diff('day', e.ingest_date, s.run_date) <= 30 THEN '8-30 days'
            WHEN date_diff('day', e.ingest_date, s.run_date) <= 90 THEN '31-90 days'
            ELSE 'over 90 days' END AS age_bucket,
       count(DISTINCT s.event_id) AS records,
       sum(s.amount_minor) AS amount_minor
FROM (SELECT DISTINCT tenant_id, run_date, event_id, reason_code, currency, amount_minor
      FROM item_status WHERE status = 'EXCEPTION') s
LEFT JOIN events e ON e.tenant_id = s.tenant_id AND e.event_id = s.event_id
GROUP BY 1, 2, 3, 4, 5
