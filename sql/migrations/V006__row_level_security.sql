-- Tenant isolation by row-level security (issue 18).
--
-- Three roles, none of them a superuser and none with BYPASSRLS:
--   the owner (whoever runs the migrations) owns every table and is the only role that may change them;
--   recon_app      the application: reads and writes the rows of ONE tenant, the tenant named by the
--                  transaction's setting app.tenant_id (set_config('app.tenant_id', t, true), per transaction,
--                  so it is safe behind PgBouncer in transaction mode); without the setting it sees no row;
--   recon_platform the few cross-tenant operations (the tenant list, the runs overview of the Reconciliation
--                  page, connectors and alerts across tenants): reads only, every tenant; the application
--                  becomes it explicitly, for one read-only transaction (SET LOCAL ROLE recon_platform), and
--                  its policy holds only while it is the current role, not for the members of the role.
-- The roles are NOLOGIN groups: a deployment grants recon_app to the application's login user
-- (GRANT recon_app TO app_user); `make pg` gives the local server's recon_app a login.
-- ENABLE + FORCE ROW LEVEL SECURITY: the policies hold for the owner's non-superuser sessions too.

DO $$
BEGIN
    BEGIN
        CREATE ROLE recon_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;     -- created by another database's migration
    END;
    BEGIN
        CREATE ROLE recon_platform NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END $$;
GRANT recon_platform TO recon_app;

-- erp_transmission was the one table without its tenant: carried, filled from its batch.
ALTER TABLE erp_transmission ADD COLUMN tenant_id text;
UPDATE erp_transmission t SET tenant_id = b.tenant_id FROM erp_export_batch b WHERE b.batch_id = t.batch_id;
ALTER TABLE erp_transmission ALTER COLUMN tenant_id SET NOT NULL;

-- The tenant a transaction works for: NULL when unset or empty (then no policy matches any row).
CREATE FUNCTION recon_tenant() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '') $$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO recon_app, recon_platform;
GRANT EXECUTE ON FUNCTION recon_tenant() TO recon_app, recon_platform;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO recon_app;
GRANT SELECT ON schema_migration TO recon_app, recon_platform;

DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT table_name FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY table_name
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I TO recon_app '
                       'USING (tenant_id = recon_tenant()) WITH CHECK (tenant_id = recon_tenant())', t);
        EXECUTE format('CREATE POLICY platform_read ON %I FOR SELECT TO recon_platform '
                       'USING (current_user = ''recon_platform'')', t);
        EXECUTE format('GRANT SELECT ON %I TO recon_platform', t);
        IF t = 'audit_log' THEN
            EXECUTE format('GRANT SELECT, INSERT ON %I TO recon_app', t);       -- append only
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO recon_app', t);
        END IF;
    END LOOP;
END $$;
