-- The audit trail as a tamper-evident, append-only log (issue 18).
--
-- 1. A hash chain per tenant (rows without a tenant: their own chain): each row gets the next sequence number of
--    its chain, the previous row's hash, and its own hash: SHA-256 over a canonical encoding of the row (every
--    field as <length>:<text>; , NULL as -; , the time as UTC ISO-8601 with microseconds, the detail as jsonb's
--    text) that ends with the previous hash. `recon audit verify --tenant T` recomputes it in Python
--    (jobs/audit.py) and names the first broken link: a changed row breaks its own hash, a deleted one the
--    sequence, a row put back in another place the previous-hash link.
-- 2. Append-only: UPDATE, DELETE and TRUNCATE are refused by triggers, for every role; the application's role
--    has only SELECT and INSERT (V006). Only the tables' owner could disable the triggers, and the chain shows
--    what it changed unless it rewrote every later hash: `recon audit verify` prints the chain's head, which an
--    auditor keeps (the evidence packs of issue 19 sign it).

CREATE FUNCTION audit_log_field(value text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN value IS NULL THEN '-;' ELSE length(value)::text || ':' || value || ';' END $$;

CREATE FUNCTION audit_log_hash(tenant_id text, seq bigint, actor text, action text, object_type text,
                               object_id text, detail jsonb, at timestamptz, prev_hash text)
    RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(
        audit_log_field(tenant_id) || audit_log_field(seq::text) || audit_log_field(actor) ||
        audit_log_field(action) || audit_log_field(object_type) || audit_log_field(object_id) ||
        audit_log_field(detail::text) ||
        audit_log_field(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) ||
        audit_log_field(prev_hash), 'UTF8')), 'hex')
$$;

ALTER TABLE audit_log ADD COLUMN seq bigint, ADD COLUMN prev_hash char(64), ADD COLUMN record_hash char(64);

-- the rows written before the chain, chained in the order they were written (as the owner, past the policies)
ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY;
DO $$
DECLARE
    r record;
    chain text := NULL;
    n bigint := 0;
    prev text := repeat('0', 64);
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY coalesce(tenant_id, ''), audit_id LOOP
        IF chain IS DISTINCT FROM coalesce(r.tenant_id, '') THEN
            chain := coalesce(r.tenant_id, '');
            n := 0;
            prev := repeat('0', 64);
        END IF;
        n := n + 1;
        UPDATE audit_log SET seq = n, prev_hash = prev,
               record_hash = audit_log_hash(r.tenant_id, n, r.actor, r.action, r.object_type, r.object_id, r.detail,
                                            r.at, prev)
         WHERE audit_id = r.audit_id
        RETURNING record_hash INTO prev;
    END LOOP;
END $$;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL,
                      ALTER COLUMN record_hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (coalesce(tenant_id, ''), seq);

CREATE FUNCTION audit_log_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last record;
BEGIN
    -- one writer per chain at a time, until its transaction ends; the next one then sees its row
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_log:' || coalesce(NEW.tenant_id, ''), 727));
    SELECT a.seq, a.record_hash INTO last FROM audit_log a
     WHERE coalesce(a.tenant_id, '') = coalesce(NEW.tenant_id, '') ORDER BY a.seq DESC LIMIT 1;
    NEW.at := coalesce(NEW.at, now());
    NEW.seq := coalesce(last.seq, 0) + 1;
    NEW.prev_hash := coalesce(last.record_hash, repeat('0', 64));
    NEW.record_hash := audit_log_hash(NEW.tenant_id, NEW.seq, NEW.actor, NEW.action, NEW.object_type, NEW.object_id,
                                      NEW.detail, NEW.at, NEW.prev_hash);
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_append BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append();

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

GRANT EXECUTE ON FUNCTION audit_log_field(text), audit_log_hash(text, bigint, text, text, text, text, jsonb,
                                                                timestamptz, text) TO recon_app;
