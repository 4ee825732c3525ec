-- The exceptions queue as a workplace (issue 18): operators assign exceptions, move them through a status,
-- write notes, and propose a write-off, which (like every correction) a second person approves.
--
-- * workflow_status gains 'written_off', set only by an approved write-off (jobs/corrections.py); the other
--   statuses are set by people with a working role (jobs/exception_queue.py). new = open, waiting = waiting on
--   the PSP. A refresh by a run never changes them (sql/queries/exceptions_upsert.sql).
-- * note holds the latest note for the list; every note, assignment and status change is a row of the audit
--   trail (object_type 'exception', object_id '<relation>:<event_id>'), which is the exception's history: the
--   index below serves that lookup.
-- * correction.kind gains 'write_off'.

ALTER TABLE exception_item DROP CONSTRAINT exception_item_workflow_status_check;
ALTER TABLE exception_item ADD CONSTRAINT exception_item_workflow_status_check
    CHECK (workflow_status IN ('new', 'investigating', 'waiting', 'resolved', 'written_off'));
CREATE INDEX exception_item_queue ON exception_item (tenant_id, is_open, workflow_status, first_seen_date);

CREATE INDEX audit_log_object ON audit_log (tenant_id, object_type, object_id, seq);

ALTER TABLE correction DROP CONSTRAINT correction_kind_check;
ALTER TABLE correction ADD CONSTRAINT correction_kind_check
    CHECK (kind IN ('manual_match', 'unmatch', 'adjustment', 'dispute_accept', 'write_off'));
