-- The figures of a tenant's daily reconciliation report (jobs/daily_report.py), one row per figure:
-- (section, k1, k2, day, value). Everything as of %(business_date)s, nothing "now".
--   metric        k1 = metric, k2 = dimension       the day's run figures (run_metric)
--   trend         k1 = total | matched              book records per run date, the 30 days up to the day
--   open          k1 = reason code, k2 = age bucket  open exceptions (count) first seen by the day
--   unreconciled  k1 = currency                     their absolute amounts, minor units
--   in_transit    k1 = account, k2 = currency        payouts in transit: debits - credits of the tenant's
--                                                    psp_in_transit accounts, all run dates up to the day
WITH m AS (
    SELECT business_date, metric, dimension, value FROM run_metric
    WHERE tenant_id = %(tenant_id)s AND business_date BETWEEN %(business_date)s::date - 29 AND %(business_date)s
), q AS (
    SELECT reason_code, currency::text AS currency, abs(amount_minor) AS amount,
           (%(business_date)s::date - first_seen_date) AS age_days
    FROM exception_item
    WHERE tenant_id = %(tenant_id)s AND is_open AND first_seen_date <= %(business_date)s
), tb AS (
    SELECT split_part(dimension, '|', 1) AS account, split_part(dimension, '|', 2) AS currency,
           sum(CASE WHEN metric = 'trial_balance_debit_minor' THEN value ELSE -value END) AS balance
    FROM run_metric
    WHERE tenant_id = %(tenant_id)s AND business_date <= %(business_date)s
      AND metric IN ('trial_balance_debit_minor', 'trial_balance_credit_minor')
      AND dimension LIKE %(in_transit_like)s
    GROUP BY 1, 2
)
SELECT 'metric' AS section, metric AS k1, dimension AS k2, business_date AS day, value::numeric AS value
FROM m WHERE business_date = %(business_date)s
UNION ALL
SELECT 'trend', dimension, '', business_date, value::numeric
FROM m WHERE metric = 'book_records' AND dimension IN ('total', 'matched')
UNION ALL
SELECT 'open', reason_code,
       CASE WHEN age_days <= 2 THEN '0-2' WHEN age_days <= 7 THEN '3-7' WHEN age_days <= 30 THEN '8-30' ELSE '31+' END,
       %(business_date)s::date, count(*)::numeric
FROM q GROUP BY 2, 3
UNION ALL
SELECT 'unreconciled', currency, '', %(business_date)s::date, sum(amount)::numeric FROM q GROUP BY currency
UNION ALL
SELECT 'in_transit', account, currency, %(business_date)s::date, balance::numeric FROM tb WHERE balance <> 0
