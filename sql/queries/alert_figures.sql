-- The figures a daily run's outcome alerts compare with the tenant's thresholds (jobs/alerts/outcomes.py), one
-- row per figure: (figure, dimension, business_date, value). Read after the run's publish stage.
--   book_total / book_matched   per run date: the day itself and the runs of the 7 days before (the trailing median)
--   ledger_debit / ledger_credit per currency, of the day's journals
--   files_parsed                 per source: files received for the day and parsed
--   open_count / open_amount     per currency: open exceptions and the sum of their absolute amounts (minor units)
--   overdue                      per reason code: open exceptions older than their SLA at the day, not being resolved
WITH m AS (
    SELECT business_date, metric, dimension, value FROM run_metric
    WHERE tenant_id = %(tenant_id)s AND business_date BETWEEN %(business_date)s::date - 7 AND %(business_date)s
), q AS (
    SELECT e.reason_code, e.currency, e.amount_minor, e.workflow_status,
           (%(business_date)s::date - e.first_seen_date) AS age_days,
           coalesce((%(sla)s::jsonb ->> e.reason_code)::int, (%(sla)s::jsonb ->> '*')::int) AS sla_days
    FROM exception_item e
    WHERE e.tenant_id = %(tenant_id)s AND e.is_open AND e.first_seen_date <= %(business_date)s
)
SELECT 'book_' || dimension AS figure, '' AS dimension, business_date, value::numeric AS value
FROM m WHERE metric = 'book_records' AND dimension IN ('total', 'matched')
UNION ALL
SELECT CASE metric WHEN 'ledger_debit_minor' THEN 'ledger_debit' ELSE 'ledger_credit' END, dimension, business_date,
       value::numeric
FROM m WHERE metric IN ('ledger_debit_minor', 'ledger_credit_minor') AND business_date = %(business_date)s
UNION ALL
SELECT 'files_parsed', source, received_date, count(*)::numeric FROM raw_file
WHERE tenant_id = %(tenant_id)s AND received_date = %(business_date)s AND parsed_at IS NOT NULL
GROUP BY source, received_date
UNION ALL
SELECT 'open_count', currency::text, %(business_date)s::date, count(*)::numeric FROM q GROUP BY currency
UNION ALL
SELECT 'open_amount', currency::text, %(business_date)s::date, sum(abs(amount_minor))::numeric FROM q GROUP BY currency
UNION ALL
SELECT 'overdue', reason_code, %(business_date)s::date, count(*)::numeric FROM q
WHERE sla_days IS NOT NULL AND age_days > sla_days AND workflow_status NOT IN ('resolved', 'written_off')
GROUP BY reason_code
