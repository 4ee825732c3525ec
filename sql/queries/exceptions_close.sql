-- Step 2: close the open exceptions of the tenant that the run of %(business_date)s no longer reports.
UPDATE exception_item AS e
   SET is_open = false, updated_at = now()
 WHERE e.tenant_id = %(tenant_id)s
   AND e.is_open
   AND e.last_seen_date <= %(business_date)s
   AND NOT EXISTS (SELECT 1 FROM exception_stage s WHERE s.event_id = e.event_id AND s.relation = e.relation)
