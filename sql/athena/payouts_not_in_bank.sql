-- PSP payouts not yet found in a bank statement after each day's run: the open payout side of payout_bank, with
-- its status (EXPECTED within the settlement window, EXCEPTION after) and reason.
CREATE OR REPLACE VIEW payouts_not_in_bank AS
SELECT s.tenant_id,
       s.run_date,
       s.source AS psp,
       s.status,
       s.reason_code,
       s.due_date,
       s.currency,
       s.amount_minor,
       s.file_name,
       s.record_ordinal
FROM item_status s
WHERE s.relation = 'payout_bank' AND s.event_type = 'payout'
