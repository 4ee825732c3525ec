-- What each day's run matched, per relation, level and rule: member records and match groups.
CREATE OR REPLACE VIEW matches_by_level AS
SELECT tenant_id,
       run_date,
       relation,
       level,
       rule_id,
       count(*) AS matched_records,
       count(DISTINCT match_id) AS match_groups
FROM matches
GROUP BY tenant_id, run_date, relation, level, rule_id
