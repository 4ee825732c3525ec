-- psp-recon operational store, version 2: ingestion. Connectors per tenant (every change a new
-- version, with who and when), their runs, state, alerts, and the durable webhook inbox.
-- Secrets are never stored here: a connector names Airflow connection ids (or secrets-backend keys).

-- The current version of each connector (what the ingest DAG runs).
CREATE TABLE connector (
    tenant_id     text        NOT NULL REFERENCES tenant (tenant_id),
    connector_id  text        NOT NULL CHECK (connector_id ~ '^[a-z][a-z0-9_-]{1,62}$'),
    kind          text        NOT NULL CHECK (kind IN ('sftp', 'imap', 'api', 'webhook')),
    version       integer     NOT NULL CHECK (version >= 1),
    enabled       boolean     NOT NULL,
    config        jsonb       NOT NULL,
    updated_by    text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connector_id)
);

-- Every version of every connector, never updated: runs record the version they used.
CREATE TABLE connector_version (
    tenant_id     text        NOT NULL,
    connector_id  text        NOT NULL,
    version       integer     NOT NULL CHECK (version >= 1),
    kind          text        NOT NULL,
    enabled       boolean     NOT NULL,
    config        jsonb       NOT NULL,
    changed_by    text        NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT now(),
    change_note   text,
    PRIMARY KEY (tenant_id, connector_id, version),
    FOREIGN KEY (tenant_id, connector_id) REFERENCES connector (tenant_id, connector_id)
);

-- Incremental position of a connector (API watermark); one row per connector.
CREATE TABLE connector_state (
    tenant_id     text        NOT NULL,
    connector_id  text        NOT NULL,
    watermark     timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connector_id),
    FOREIGN KEY (tenant_id, connector_id) REFERENCES connector (tenant_id, connector_id)
);

-- One row per attempt of a connector in an ingest run (what the Airflow task did, queryable).
CREATE TABLE connector_run (
    run_pk                bigserial   PRIMARY KEY,
    tenant_id             text        NOT NULL,
    connector_id          text        NOT NULL,
    connector_version     integer     NOT NULL,
    dag_run_id            text        NOT NULL,
    try_number            integer     NOT NULL,
    received_date         date        NOT NULL,
    status                text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    files_seen            integer,
    files_landed          integer,
    files_already_landed  integer,
    detail                jsonb,
    error                 text,
    started_at            timestamptz NOT NULL DEFAULT now(),
    finished_at           timestamptz,
    FOREIGN KEY (tenant_id, connector_id) REFERENCES connector (tenant_id, connector_id)
);
CREATE INDEX connector_run_recent ON connector_run (tenant_id, connector_id, started_at DESC);

-- Alerts raised by ingestion (connector failed after its retries, file missing past its delivery
-- window). Recorded here whether or not a delivery channel is configured; dedupe_key makes raising
-- the same alert again (e.g. every hour while a file is late) a no-op.
CREATE TABLE alert (
    alert_id         bigserial   PRIMARY KEY,
    tenant_id        text        NOT NULL,
    connector_id     text,
    kind             text        NOT NULL CHECK (kind IN ('connector_failed', 'file_late')),
    severity         text        NOT NULL CHECK (severity IN ('warning', 'error', 'critical')),
    dedupe_key       text        NOT NULL UNIQUE,
    message          text        NOT NULL,
    detail           jsonb,
    raised_at        timestamptz NOT NULL DEFAULT now(),
    delivered_via    text[]      NOT NULL DEFAULT '{}',
    delivery_errors  text,
    resolved_at      timestamptz
);
CREATE INDEX alert_open ON alert (tenant_id, raised_at DESC) WHERE resolved_at IS NULL;

-- Remote files already landed (SFTP): a file with the same path, size and mtime is not downloaded
-- again. Only an optimisation: exactly-once landing is the raw_file primary key.
CREATE TABLE remote_file_seen (
    tenant_id     text        NOT NULL,
    connector_id  text        NOT NULL,
    remote_path   text        NOT NULL,
    size_bytes    bigint      NOT NULL,
    remote_mtime  bigint      NOT NULL,
    sha256        char(64)    NOT NULL,
    seen_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connector_id, remote_path, size_bytes, remote_mtime)
);

-- Objects fetched from a PSP list API and landed, by the PSP's object id: an object lands in one file
-- only, however the API pages overlap. Written in the transaction that records the file's manifest row.
CREATE TABLE api_object_seen (
    tenant_id     text        NOT NULL,
    connector_id  text        NOT NULL,
    object_id     text        NOT NULL,
    sha256        char(64)    NOT NULL,
    PRIMARY KEY (tenant_id, connector_id, object_id)
);

-- Webhook batches: accepted events grouped into one raw file each; the content of a batch is fixed
-- when it is created (its events, in event order), so landing it again gives the same file.
CREATE TABLE webhook_batch (
    batch_id       bigserial   PRIMARY KEY,
    tenant_id      text        NOT NULL,
    connector_id   text        NOT NULL,
    received_date  date        NOT NULL,
    event_count    integer     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    sha256         char(64),
    raw_uri        text,
    landed_at      timestamptz,
    FOREIGN KEY (tenant_id, connector_id) REFERENCES connector (tenant_id, connector_id)
);
CREATE INDEX webhook_batch_pending ON webhook_batch (tenant_id, connector_id) WHERE landed_at IS NULL;

-- The webhook inbox: an event is acknowledged to the PSP only after its row is committed here.
-- event_key is the PSP's idempotency key (Stripe event id; Adyen eventCode:pspReference:success).
CREATE TABLE webhook_event (
    event_pk          bigserial   PRIMARY KEY,
    tenant_id         text        NOT NULL,
    connector_id      text        NOT NULL,
    event_key         text        NOT NULL,
    event_type        text,
    signature_sha256  char(64)    NOT NULL,
    payload           bytea       NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    batch_id          bigint      REFERENCES webhook_batch (batch_id),
    UNIQUE (tenant_id, connector_id, event_key),
    FOREIGN KEY (tenant_id, connector_id) REFERENCES connector (tenant_id, connector_id)
);
CREATE INDEX webhook_event_pending ON webhook_event (tenant_id, connector_id, event_pk) WHERE batch_id IS NULL;
CREATE INDEX webhook_event_batch ON webhook_event (batch_id, event_pk);
