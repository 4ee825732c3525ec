-- The open exceptions queue for the operator view, oldest first within the newest reason counts.
SELECT tenant_id, reason_code, source, event_type, amount_minor, currency, file_name, record_ordinal,
       reason_detail, first_seen_date, last_seen_date, workflow_status, assignee
FROM exception_item
WHERE is_open
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
  AND tenant_id = ANY(%(tenant_ids)s)     -- the tenants the signed-in user has a role for
  AND (%(reason)s::text IS NULL OR reason_code = %(reason)s)
ORDER BY first_seen_date, tenant_id, file_name, record_ordinal
LIMIT %(limit)s
