-- Refused dispute transitions not yet acknowledged, staged with the run's other exceptions (step 0 of
-- refreshing the queue): an impossible lifecycle step stays an open DISPUTE_TRANSITION exception until
-- someone acknowledges it (`recon dispute ack`).
INSERT INTO exception_stage (event_id, relation, reason_code, reason_detail, source, event_type, amount_minor,
                             currency, file_name, record_ordinal)
SELECT coalesce(event_id, 'dispute_event:' || dispute_event_id), 'dispute', 'DISPUTE_TRANSITION',
       left(detail, 2000), coalesce(source, psp), coalesce(event_type, action), coalesce(amount_minor, 0),
       coalesce(currency, 'XXX'), coalesce(file_name, ''), coalesce(record_ordinal, 0)
  FROM dispute_event
 WHERE tenant_id = %(tenant_id)s
   AND outcome = 'refused'
   AND acknowledged_at IS NULL
   AND (business_date IS NULL OR business_date <= %(business_date)s)
