-- Finance mart: fees charged against the rate card per day, PSP and fee component, with the variance to recover
-- (minor units; records without a rate card rule count as NO_RULE).
CREATE OR REPLACE VIEW recon_marts.fee_variance AS
SELECT tenant_id,
       run_date,
       coalesce(psp, 'unknown') AS psp,
       component,
       currency,
       status,
       count(*) AS records,
       sum(charged_minor) AS charged_minor,
       sum(coalesce(expected_minor, 0)) AS expected_minor,
       sum(coalesce(variance_minor, 0)) AS variance_minor
FROM recon_lake.fee_checks
GROUP BY 1, 2, 3, 4, 5, 6
WITH NO SCHEMA BINDING;
