-- Book records matched to the PSP per day and PSP: the book records landed that day, how many are matched
-- (book_psp, any level, by any run so far) and the rate. Matches an operator revoked are kept in PostgreSQL, not in
-- the lake: a revoked match still counts here until the day is rerun.
CREATE OR REPLACE VIEW match_rate_daily AS
SELECT b.tenant_id,
       b.ingest_date,
       coalesce(b.psp, 'unknown') AS psp,
       count(*) AS book_records,
       count(m.event_id) AS matched_records,
       CAST(count(m.event_id) AS double) / count(*) AS match_rate
FROM events b
LEFT JOIN (SELECT DISTINCT tenant_id, event_id FROM matches WHERE relation = 'book_psp' AND role = 'book') m
       ON m.tenant_id = b.tenant_id AND m.event_id = b.event_id
WHERE b.source_kind = 'book'
GROUP BY b.tenant_id, b.ingest_date, coalesce(b.psp, 'unknown')
