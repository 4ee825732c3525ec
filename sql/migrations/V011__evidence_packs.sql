-- Evidence packs for the auditors (jobs/evidence.py): one archive per tenant and period, its manifest signed with
-- the tenant's Ed25519 key. The public keys are kept here, so a pack is verified against a key the platform
-- registered, not against the one the pack itself carries; every pack built is recorded (never replaced: a rebuild
-- of a period is a new pack with the next number).

CREATE TABLE evidence_key (
    tenant_id    text        NOT NULL REFERENCES tenant (tenant_id),
    fingerprint  char(64)    NOT NULL,                     -- SHA-256 of the raw public key, hex
    public_key   text        NOT NULL,                     -- raw Ed25519 public key, base64
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, fingerprint)
);

CREATE TABLE evidence_pack (
    tenant_id        text        NOT NULL REFERENCES tenant (tenant_id),
    period           text        NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$'),
    pack_no          integer     NOT NULL CHECK (pack_no >= 1),
    uri              text        NOT NULL,
    archive_sha256   char(64)    NOT NULL,
    manifest_sha256  char(64)    NOT NULL,
    key_fingerprint  char(64)    NOT NULL,
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, period, pack_no),
    FOREIGN KEY (tenant_id, key_fingerprint) REFERENCES evidence_key (tenant_id, fingerprint)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['evidence_key', 'evidence_pack'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I TO recon_app '
                       'USING (tenant_id = recon_tenant()) WITH CHECK (tenant_id = recon_tenant())', t);
        EXECUTE format('CREATE POLICY platform_read ON %I FOR SELECT TO recon_platform '
                       'USING (current_user = ''recon_platform'')', t);
        EXECUTE format('GRANT SELECT ON %I TO recon_platform', t);
        EXECUTE format('GRANT SELECT, INSERT ON %I TO recon_app', t);      -- recorded, never changed
    END LOOP;
END $$;
