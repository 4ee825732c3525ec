-- Alerts on reconciliation outcomes and on failed DAG tasks, beside the connectors' alerts (V002).
--
-- * priority: P1 (page someone now), P2 (today), P3 (this week); it picks the channels (tenant configuration
--   `alerts.channels`). Severity stays what PagerDuty and the messages say: P1 critical, P2 error, P3 warning.
-- * One open alert per condition: the dedupe key is unique among the alerts not resolved yet, so a condition that
--   clears (resolved_at set) and comes back later raises a new alert; while it stays open a check that sees it again
--   only counts it (seen_count, last_seen_at) and sends nothing.
-- * Rate limit: a channel that already carried the tenant's limit of alerts in the last hour is skipped for P2 and
--   P3 alerts (named in rate_limited_via; the alert is recorded and logged all the same). P1 is never held back.
-- * Resolution: resolved_by says what cleared it (the check that no longer sees the condition, the task that
--   succeeded, the file that arrived); resolved_via the channels the all-clear went to.

ALTER TABLE alert DROP CONSTRAINT alert_kind_check;
ALTER TABLE alert ADD CONSTRAINT alert_kind_check CHECK (kind IN (
    'connector_failed', 'file_late',                                  -- ingestion (V002)
    'task_failed', 'run_failed',                                      -- a DAG task or run failed
    'ledger_unbalanced', 'source_missing', 'match_rate_low', 'match_rate_drop',
    'open_exceptions', 'unreconciled_amount', 'sla_breached'));       -- the outcome of a daily run

ALTER TABLE alert ADD COLUMN priority text NOT NULL DEFAULT 'P2' CHECK (priority IN ('P1', 'P2', 'P3'));
UPDATE alert SET priority = CASE severity WHEN 'critical' THEN 'P1' WHEN 'error' THEN 'P2' ELSE 'P3' END;
ALTER TABLE alert ALTER COLUMN priority DROP DEFAULT;

ALTER TABLE alert ADD COLUMN business_date date;
ALTER TABLE alert ADD COLUMN seen_count integer NOT NULL DEFAULT 1;
ALTER TABLE alert ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE alert ADD COLUMN rate_limited_via text[] NOT NULL DEFAULT '{}';
ALTER TABLE alert ADD COLUMN resolved_by text;
ALTER TABLE alert ADD COLUMN resolved_via text[] NOT NULL DEFAULT '{}';

ALTER TABLE alert DROP CONSTRAINT alert_dedupe_key_key;
CREATE UNIQUE INDEX alert_open_condition ON alert (dedupe_key) WHERE resolved_at IS NULL;
CREATE INDEX alert_recent_delivery ON alert (tenant_id, raised_at DESC);
