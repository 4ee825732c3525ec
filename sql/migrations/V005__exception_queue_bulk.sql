-- The exceptions queue takes a day's exceptions in one statement (a 1M-payment day has ~130k; a bad
-- day or a backlog, millions). Two per-row costs dominated that statement (EXPLAIN ANALYZE, 1M new rows:
-- 10.2 s, of which the tenant foreign key's trigger 3.3 s and key comparisons under the database's
-- linguistic collation most of the rest); both go, nothing the queue guarantees changes.

-- 1. Keys compared byte by byte. Event ids are hex digests (or 'dispute_event:<n>') and relations are
--    ASCII names, so "C" orders them exactly as before; the primary key index is rebuilt.
ALTER TABLE exception_item
    ALTER COLUMN event_id TYPE text COLLATE "C",
    ALTER COLUMN relation TYPE text COLLATE "C";

-- 2. The tenant reference checked once per statement instead of once per row. A foreign key fires one
--    trigger per inserted row; this checks the statement's new rows as a set (their distinct tenants,
--    locked FOR KEY SHARE like the foreign key does, so a tenant cannot be deleted under the insert) and
--    refuses the statement with the same SQLSTATE (23503 foreign_key_violation). The other directions
--    of the old constraint stay enforced: an exception's tenant never changes, and a tenant with
--    exceptions can be neither deleted nor renamed.
ALTER TABLE exception_item DROP CONSTRAINT exception_item_tenant_id_fkey;

CREATE FUNCTION exception_item_tenants_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    PERFORM 1 FROM tenant t WHERE t.tenant_id IN (SELECT DISTINCT n.tenant_id FROM new_rows n) FOR KEY SHARE;
    SELECT n.tenant_id INTO missing
      FROM (SELECT DISTINCT tenant_id FROM new_rows) n
     WHERE NOT EXISTS (SELECT 1 FROM tenant t WHERE t.tenant_id = n.tenant_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert into exception_item refused: tenant "%" is not in table "tenant"', missing
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER exception_item_tenant_exists AFTER INSERT ON exception_item
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION exception_item_tenants_exist();

CREATE FUNCTION exception_item_tenant_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the tenant of an exception cannot change (% -> %)', OLD.tenant_id, NEW.tenant_id
          USING ERRCODE = 'foreign_key_violation';
END $$;

CREATE TRIGGER exception_item_tenant_fixed BEFORE UPDATE OF tenant_id ON exception_item
    FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id) EXECUTE FUNCTION exception_item_tenant_fixed();

CREATE FUNCTION tenant_keeps_its_exceptions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM exception_item e WHERE e.tenant_id = OLD.tenant_id) THEN
        RAISE EXCEPTION '% of tenant "%" refused: table "exception_item" still refers to it', lower(TG_OP), OLD.tenant_id
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER tenant_keeps_its_exceptions BEFORE DELETE OR UPDATE OF tenant_id ON tenant
    FOR EACH ROW EXECUTE FUNCTION tenant_keeps_its_exceptions();
