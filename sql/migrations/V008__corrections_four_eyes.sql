-- Four eyes on every correction (issue 18): a manual match or unmatch, an adjustment and a dispute acceptance
-- are proposals until a second person approves them; who may approve how much comes from their role.
--
-- tenant_member: a person's roles per tenant (operator: works the queue and proposes; approver and
--   controller: approve up to their role's limit, tenant configuration `approvals.limits`; auditor: reads;
--   admin: grants roles). Granted with `recon access grant`, every grant audited.
-- correction: one proposal. The database refuses what must never happen whatever the caller: an approver or
--   rejecter who proposed it, a decision without a decider, a rejection without a reason, and two pending
--   proposals on the same subject (the records or object the correction changes, canonical). Limits, expiry
--   and applying the correction are jobs/corrections.py, the one service the CLI, the JSON API and the UI call.

CREATE TABLE tenant_member (
    tenant_id   text        NOT NULL REFERENCES tenant (tenant_id),
    user_name   text        NOT NULL CHECK (length(trim(user_name)) > 0),
    role        text        NOT NULL CHECK (role IN ('operator', 'approver', 'controller', 'auditor', 'admin')),
    granted_by  text        NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_name, role)
);

CREATE TABLE correction (
    correction_id    bigserial   PRIMARY KEY,
    tenant_id        text        NOT NULL REFERENCES tenant (tenant_id),
    kind             text        NOT NULL CHECK (kind IN ('manual_match', 'unmatch', 'adjustment', 'dispute_accept')),
    subject          text        NOT NULL,
    detail           jsonb       NOT NULL,
    amount_minor     bigint      NOT NULL CHECK (amount_minor >= 0),
    currency         char(3)     NOT NULL,
    reason           text        NOT NULL CHECK (length(trim(reason)) > 0),
    proposed_by      text        NOT NULL CHECK (length(trim(proposed_by)) > 0),
    proposed_at      timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by       text,
    decided_at       timestamptz,
    decision_reason  text,
    CHECK (decided_by IS NULL OR decided_by <> proposed_by),
    CHECK ((status IN ('approved', 'rejected')) = (decided_by IS NOT NULL)),
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK (status <> 'rejected' OR length(trim(coalesce(decision_reason, ''))) > 0)
);
CREATE UNIQUE INDEX correction_one_pending ON correction (tenant_id, kind, subject) WHERE status = 'pending';
CREATE INDEX correction_status ON correction (tenant_id, status, proposed_at);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_member', 'correction'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I TO recon_app '
                       'USING (tenant_id = recon_tenant()) WITH CHECK (tenant_id = recon_tenant())', t);
        EXECUTE format('CREATE POLICY platform_read ON %I FOR SELECT TO recon_platform '
                       'USING (current_user = ''recon_platform'')', t);
        EXECUTE format('GRANT SELECT ON %I TO recon_platform', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO recon_app', t);
    END LOOP;
END $$;
GRANT USAGE, SELECT ON SEQUENCE correction_correction_id_seq TO recon_app;

-- a manual decision records who approved it (its proposal is the correction)
ALTER TABLE manual_match ADD COLUMN approved_by text;
