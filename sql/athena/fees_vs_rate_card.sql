-- Fees charged against the rate card per day, PSP, currency and check status (OK, UNEXPECTED_FEE, NO_RULE,
-- CLEARED): records (a record with components of two statuses counts under each) and, over their fee components,
-- charged, expected and variance in minor units.
CREATE OR REPLACE VIEW fees_vs_rate_card AS
SELECT tenant_id,
       run_date,
       coalesce(psp, 'unknown') AS psp,
       currency,
       status,
       count(DISTINCT event_id) AS records,
       sum(charged_minor) AS charged_minor,
       sum(expected_minor) AS expected_minor,
       sum(variance_minor) AS variance_minor
FROM fee_checks
GROUP BY tenant_id, run_date, coalesce(psp, 'unknown'), currency, status
