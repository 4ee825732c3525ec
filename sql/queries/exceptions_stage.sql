CREATE TEMP TABLE exception_stage (
    event_id        text COLLATE "C",      -- as exception_item's key (V005): sorted and compared bytewise
    relation        text COLLATE "C",
    reason_code     text,
    reason_detail   text,
    source          text,
    event_type      text,
    amount_minor    bigint,
    currency        text,
    file_name       text,
    record_ordinal  integer
) ON COMMIT DROP
