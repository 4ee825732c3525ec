-- Step 1 of refreshing the exceptions queue of one tenant from the run of %(business_date)s (staged rows).
-- New exceptions are inserted; known ones get the latest reason and last_seen_date; exceptions the
-- run no longer reports (matched since, or resolved by a rerun) are closed. Columns that belong to
-- people (workflow_status, assignee, note) are never overwritten.
INSERT INTO exception_item AS e (tenant_id, event_id, relation, reason_code, reason_detail, source, event_type,
                                 amount_minor, currency, file_name, record_ordinal, first_seen_date,
                                 last_seen_date, is_open)
SELECT %(tenant_id)s, event_id, relation, reason_code, reason_detail, source, event_type, amount_minor,
       currency, file_name, record_ordinal, %(business_date)s, %(business_date)s, true
FROM exception_stage
ORDER BY event_id, relation       -- key order: the primary key index is filled page by page
ON CONFLICT (tenant_id, event_id, relation) DO UPDATE
   SET reason_code = EXCLUDED.reason_code,
       reason_detail = EXCLUDED.reason_detail,
       first_seen_date = LEAST(e.first_seen_date, EXCLUDED.first_seen_date),
       last_seen_date = GREATEST(e.last_seen_date, EXCLUDED.last_seen_date),
       is_open = true,
       updated_at = now()
   WHERE (e.reason_code, e.reason_detail, e.is_open, e.last_seen_date)
         IS DISTINCT FROM (EXCLUDED.reason_code, EXCLUDED.reason_detail, true,
                           GREATEST(e.last_seen_date, EXCLUDED.last_seen_date))
