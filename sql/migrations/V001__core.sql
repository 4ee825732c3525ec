-- psp-recon operational store, version 1: tenants, raw-file manifest, runs, exceptions queue,
-- manual matches, audit log. Applied once by `recon db migrate` (jobs/store/migrate.py).

CREATE TABLE tenant (
    tenant_id       text PRIMARY KEY CHECK (tenant_id ~ '^[a-z][a-z0-9_]{1,62}$'),
    name            text        NOT NULL,
    config          jsonb       NOT NULL,
    config_version  integer     NOT NULL,
    config_sha256   text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Every version of every tenant's configuration (rules, chart of accounts, ageing), kept for lineage:
-- each match and journal records the version it used.
CREATE TABLE tenant_config_version (
    tenant_id       text        NOT NULL REFERENCES tenant (tenant_id),
    config_version  integer     NOT NULL,
    config          jsonb       NOT NULL,
    config_sha256   text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, config_version)
);

-- The raw-zone manifest: one row per distinct file content per tenant (exactly-once landing).
CREATE TABLE raw_file (
    tenant_id            text        NOT NULL REFERENCES tenant (tenant_id),
    sha256               char(64)    NOT NULL,
    size_bytes           bigint      NOT NULL,
    file_name            text        NOT NULL,
    source               text        NOT NULL,
    format               text        NOT NULL,
    parser_version       text,
    raw_uri              text        NOT NULL,
    received_date        date        NOT NULL,
    received_at          timestamptz NOT NULL DEFAULT now(),
    connector            text        NOT NULL,
    remote_path          text,
    records_read         bigint,
    records_loaded       bigint,
    records_quarantined  bigint,
    control_totals_ok    boolean,
    parse_detail         text,
    parsed_at            timestamptz,
    PRIMARY KEY (tenant_id, sha256)
);
CREATE INDEX raw_file_received ON raw_file (tenant_id, received_date);

-- Every delivery of a file, including re-deliveries of content already landed (provenance).
CREATE TABLE raw_file_delivery (
    delivery_id   bigserial   PRIMARY KEY,
    tenant_id     text        NOT NULL,
    sha256        char(64)    NOT NULL,
    file_name     text        NOT NULL,
    connector     text        NOT NULL,
    remote_path   text,
    received_date date        NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('landed', 'already_landed')),
    delivered_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, sha256) REFERENCES raw_file (tenant_id, sha256)
);
CREATE UNIQUE INDEX raw_file_delivery_once
    ON raw_file_delivery (tenant_id, sha256, file_name, connector, coalesce(remote_path, ''), received_date);

-- One row per (tenant, business date): the latest run's outcome and its summary.
CREATE TABLE recon_run (
    tenant_id      text        NOT NULL REFERENCES tenant (tenant_id),
    business_date  date        NOT NULL,
    run_id         text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    summary        jsonb,
    PRIMARY KEY (tenant_id, business_date)
);

-- Figures of a run, one row per metric and dimension (records per source, matches per level...).
CREATE TABLE run_metric (
    tenant_id      text    NOT NULL,
    business_date  date    NOT NULL,
    metric         text    NOT NULL,
    dimension      text    NOT NULL DEFAULT '',
    value          bigint  NOT NULL,
    PRIMARY KEY (tenant_id, business_date, metric, dimension),
    FOREIGN KEY (tenant_id, business_date) REFERENCES recon_run (tenant_id, business_date) ON DELETE CASCADE
);

-- The exceptions queue operators work through. Refreshed from the lake by every run (publish);
-- workflow columns (assignee, note, workflow_status) belong to people and survive refreshes.
CREATE TABLE exception_item (
    tenant_id        text        NOT NULL REFERENCES tenant (tenant_id),
    event_id         text        NOT NULL,
    relation         text        NOT NULL,
    reason_code      text        NOT NULL,
    reason_detail    text,
    source           text        NOT NULL,
    event_type       text        NOT NULL,
    amount_minor     bigint      NOT NULL,
    currency         char(3)     NOT NULL,
    file_name        text        NOT NULL,
    record_ordinal   integer     NOT NULL,
    first_seen_date  date        NOT NULL,
    last_seen_date   date        NOT NULL,
    is_open          boolean     NOT NULL DEFAULT true,
    workflow_status  text        NOT NULL DEFAULT 'new'
                     CHECK (workflow_status IN ('new', 'investigating', 'waiting', 'resolved')),
    assignee         text,
    note             text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id, relation)
);
CREATE INDEX exception_item_open ON exception_item (tenant_id, is_open, reason_code);

-- Manual match / unmatch decisions by people; the matcher applies them on every (re)run.
CREATE TABLE manual_match (
    manual_match_id  bigserial   PRIMARY KEY,
    tenant_id        text        NOT NULL REFERENCES tenant (tenant_id),
    action           text        NOT NULL CHECK (action IN ('match', 'unmatch')),
    relation         text        NOT NULL CHECK (relation IN ('book_psp', 'payout_bank')),
    event_ids        text[]      NOT NULL CHECK (cardinality(event_ids) >= 1),
    reason           text        NOT NULL,
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz
);
CREATE INDEX manual_match_tenant ON manual_match (tenant_id) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    audit_id     bigserial   PRIMARY KEY,
    tenant_id    text,
    actor        text        NOT NULL,
    action       text        NOT NULL,
    object_type  text        NOT NULL,
    object_id    text,
    detail       jsonb,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);
