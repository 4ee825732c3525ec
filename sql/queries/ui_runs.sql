-- Latest runs per tenant for the operator view (newest first).
SELECT r.tenant_id, r.business_date, r.run_id, r.status, r.finished_at,
       (r.summary ->> 'book_match_rate')::numeric AS book_match_rate,
       (r.summary ->> 'ledger_balanced')::boolean AS ledger_balanced,
       r.summary ->> 'failed_stage' AS failed_stage, r.summary ->> 'error' AS error,
       (SELECT coalesce(sum(value), 0) FROM run_metric m
         WHERE m.tenant_id = r.tenant_id AND m.business_date = r.business_date AND m.metric = 'exceptions') AS exceptions
FROM recon_run r
WHERE (%(tenant_id)s::text IS NULL OR r.tenant_id = %(tenant_id)s)
  AND r.tenant_id = ANY(%(tenant_ids)s)     -- the tenants the signed-in user has a role for
ORDER BY r.business_date DESC, r.tenant_id
LIMIT %(limit)s
