CREATE TEMP TABLE exception_stage (
    event_id        text,
    relation        text,
    reason_code     text,
    reason_detail   text,
    source          text,
    event_type      text,
    amount_minor    bigint,
    currency        text,
    file_name       text,
    record_ordinal  integer
) ON COMMIT DROP
