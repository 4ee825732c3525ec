-- One page of a tenant's exceptions queue, with each exception's age (days from first seen to %(as_of)s, the
-- business date the queue is read at), age bucket, SLA (days, per reason code from the tenant's
-- `exceptions.sla_days`, "*" for any other) and whether it is overdue (older than its SLA and neither resolved
-- nor written off). Every filter is optional (NULL: not filtered). `total` is the count of all rows the filters
-- select (for pagination). Amount filters are in major units of each row's currency (`exponents`: the
-- currencies whose minor unit is not 1/100).
WITH q AS (
    SELECT e.tenant_id, e.event_id, e.relation, e.reason_code, e.reason_detail, e.source, e.event_type,
           e.amount_minor, e.currency, e.file_name, e.record_ordinal, e.first_seen_date, e.last_seen_date,
           e.workflow_status, e.assignee, e.note, e.updated_at,
           (%(as_of)s::date - e.first_seen_date) AS age_days,
           coalesce((%(sla)s::jsonb ->> e.reason_code)::int, (%(sla)s::jsonb ->> '*')::int) AS sla_days,
           abs(e.amount_minor)::numeric / power(10, coalesce((%(exponents)s::jsonb ->> e.currency::text)::int, 2))
               AS amount_abs
    FROM exception_item e
    WHERE e.tenant_id = %(tenant_id)s
      AND e.is_open
)
SELECT q.*,
       CASE WHEN age_days <= 2 THEN '0-2' WHEN age_days <= 7 THEN '3-7' WHEN age_days <= 30 THEN '8-30'
            ELSE '31+' END AS age_bucket,
       (sla_days IS NOT NULL AND age_days > sla_days AND workflow_status NOT IN ('resolved', 'written_off'))
           AS overdue,
       count(*) OVER () AS total
FROM q
WHERE (%(source)s::text IS NULL OR source = %(source)s)
  AND (%(reason)s::text IS NULL OR reason_code = %(reason)s)
  AND (%(min_age)s::int IS NULL OR age_days >= %(min_age)s)
  AND (%(max_age)s::int IS NULL OR age_days <= %(max_age)s)
  AND (%(min_amount)s::numeric IS NULL OR amount_abs >= %(min_amount)s)
  AND (%(max_amount)s::numeric IS NULL OR amount_abs <= %(max_amount)s)
  AND (%(currency)s::text IS NULL OR currency = %(currency)s)
  AND (%(assignee)s::text IS NULL OR coalesce(assignee, '') = %(assignee)s)
  AND (%(statuses)s::text[] IS NULL OR workflow_status = ANY(%(statuses)s))
  AND (NOT %(overdue_only)s OR (sla_days IS NOT NULL AND age_days > sla_days
                                AND workflow_status NOT IN ('resolved', 'written_off')))
ORDER BY overdue DESC, first_seen_date, file_name, record_ordinal, relation
LIMIT %(limit)s OFFSET %(offset)s
