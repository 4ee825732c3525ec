-- The summary of a run as stored (what `make demo` prints): the run row and its metrics.
SELECT r.tenant_id, r.business_date, r.run_id, r.status, r.started_at, r.finished_at, r.summary,
       coalesce(json_agg(json_build_object('metric', m.metric, 'dimension', m.dimension, 'value', m.value)
                         ORDER BY m.metric, m.dimension) FILTER (WHERE m.metric IS NOT NULL), '[]') AS metrics
FROM recon_run r
LEFT JOIN run_metric m ON m.tenant_id = r.tenant_id AND m.business_date = r.business_date
WHERE r.tenant_id = %(tenant_id)s AND r.business_date = %(business_date)s
GROUP BY r.tenant_id, r.business_date, r.run_id, r.status, r.started_at, r.finished_at, r.summary
