-- The lake's tables in Redshift Serverless through Spectrum, and the finance marts' schema. Run once as the
-- namespace's admin with the Terraform outputs filled in ({spectrum_database}: the Glue database that
-- `recon catalog sync` fills with each table's symlink manifests, RECON_SPECTRUM_GLUE_DATABASE;
-- {spectrum_role_arn}: output redshift_spectrum_role_arn; {region}). The lake must keep manifests:
-- RECON_DELTA_SYMLINK_MANIFESTS=true for the jobs.
CREATE EXTERNAL SCHEMA IF NOT EXISTS recon_lake
FROM DATA CATALOG DATABASE '{spectrum_database}'
IAM_ROLE '{spectrum_role_arn}'
REGION '{region}';

CREATE SCHEMA IF NOT EXISTS recon_marts;
