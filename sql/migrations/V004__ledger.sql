-- psp-recon operational store, version 4: the ledger's people-facing state. Closed periods, ledger
-- adjustments (four eyes), chargeback / dispute lifecycle with evidence, ERP export batches and their
-- transmissions. Every operator action is also written to audit_log by the code that performs it.

-- Closed accounting periods (a business date or a month). Postings into a closed period are moved to
-- the next open date with a reference; reopening keeps the row (status 'open') and its history.
CREATE TABLE ledger_period (
    tenant_id     text        NOT NULL REFERENCES tenant (tenant_id),
    period        text        NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$'),
    period_start  date        NOT NULL,
    period_end    date        NOT NULL CHECK (period_end >= period_start),
    status        text        NOT NULL CHECK (status IN ('closed', 'open')),
    changed_by    text        NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT now(),
    reason        text,
    PRIMARY KEY (tenant_id, period)
);

-- Manual ledger adjustments: a maker proposes, a different checker approves; the ledger run of
-- post_date (the later of the effective date and the approval date) posts the approved ones.
-- An adjustment naming a record (event_id) clears that record's UNEXPECTED_FEE exception.
CREATE TABLE ledger_adjustment (
    adjustment_id   bigserial   PRIMARY KEY,
    tenant_id       text        NOT NULL REFERENCES tenant (tenant_id),
    effective_date  date        NOT NULL,
    debit_key       text        NOT NULL,
    credit_key      text        NOT NULL,
    psp             text,
    amount_minor    bigint      NOT NULL CHECK (amount_minor > 0),
    currency        char(3)     NOT NULL,
    event_id        text,
    record          text,                       -- file_name#record_ordinal, for people
    reason          text        NOT NULL,
    proposed_by     text        NOT NULL,
    proposed_at     timestamptz NOT NULL DEFAULT now(),
    approved_by     text,
    approved_at     timestamptz,
    post_date       date,
    CHECK (approved_by IS NULL OR approved_by <> proposed_by),
    CHECK ((approved_by IS NULL) = (post_date IS NULL))
);
CREATE INDEX ledger_adjustment_post ON ledger_adjustment (tenant_id, post_date) WHERE approved_by IS NOT NULL;

-- One dispute per (PSP, original payment): its current state in the lifecycle
-- received -> evidence_due -> submitted -> won | lost | accepted (a second chargeback reopens a won
-- dispute as cycle + 1).
CREATE TABLE dispute (
    dispute_id     bigserial   PRIMARY KEY,
    tenant_id      text        NOT NULL REFERENCES tenant (tenant_id),
    psp            text        NOT NULL,
    payment_ref    text        NOT NULL,
    state          text        NOT NULL CHECK (state IN ('received', 'evidence_due', 'submitted', 'won', 'lost',
                                                         'accepted')),
    cycle          integer     NOT NULL DEFAULT 1 CHECK (cycle >= 1),
    amount_minor   bigint      NOT NULL,
    currency       char(3)     NOT NULL,
    opened_date    date        NOT NULL,
    due_date       date,
    psp_refs       text[]      NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, psp, payment_ref)
);
CREATE INDEX dispute_state ON dispute (tenant_id, state);

-- Everything that happened to a dispute: PSP events applied, repeated notices, operator and system
-- transitions, and refused (impossible) transitions, which are exceptions until acknowledged.
CREATE TABLE dispute_event (
    dispute_event_id  bigserial   PRIMARY KEY,
    tenant_id         text        NOT NULL,
    dispute_id        bigint      REFERENCES dispute (dispute_id),     -- null: no dispute known for the payment
    psp               text        NOT NULL,
    payment_ref       text        NOT NULL,
    origin            text        NOT NULL CHECK (origin IN ('psp', 'operator', 'system')),
    action            text        NOT NULL,
    outcome           text        NOT NULL CHECK (outcome IN ('applied', 'noted', 'refused')),
    from_state        text,
    to_state          text,
    cycle             integer     NOT NULL,
    event_id          text,
    psp_ref           text,
    source            text,
    event_type        text,
    amount_minor      bigint,
    currency          char(3),
    file_name         text,
    record_ordinal    integer,
    business_date     date,
    actor             text        NOT NULL,
    detail            text,
    at                timestamptz NOT NULL DEFAULT now(),
    acknowledged_by   text,
    acknowledged_at   timestamptz
);
CREATE UNIQUE INDEX dispute_event_once ON dispute_event (tenant_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX dispute_event_refused ON dispute_event (tenant_id) WHERE outcome = 'refused' AND acknowledged_at IS NULL;

-- Evidence documents of a dispute: stored in object storage, referenced by key and checksum.
CREATE TABLE dispute_evidence (
    evidence_id  bigserial   PRIMARY KEY,
    tenant_id    text        NOT NULL,
    dispute_id   bigint      NOT NULL REFERENCES dispute (dispute_id),
    s3_key       text        NOT NULL CHECK (length(s3_key) > 0),
    sha256       char(64)    NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    description  text,
    added_by     text        NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dispute_id, sha256)
);

-- ERP export batches: one per (tenant, ERP, period) whatever the reruns; the content is fixed when
-- the batch is created (content_sha256). A supplement for records posted after a batch was sent is
-- its own period label (<period>+<n>).
CREATE TABLE erp_export_batch (
    batch_id        bigserial   PRIMARY KEY,
    tenant_id       text        NOT NULL REFERENCES tenant (tenant_id),
    erp             text        NOT NULL CHECK (erp IN ('netsuite', 'sap', 'quickbooks')),
    period          text        NOT NULL,
    business_date   date        NOT NULL,
    layout          text        NOT NULL,
    file_name       text        NOT NULL,
    content_sha256  char(64)    NOT NULL,
    size_bytes      bigint      NOT NULL,
    documents       integer     NOT NULL,
    lines           integer     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, erp, period)
);

-- Each time a batch's file is put in the outbox: transmission 1 when created, n + 1 per re-send.
CREATE TABLE erp_transmission (
    batch_id         bigint      NOT NULL REFERENCES erp_export_batch (batch_id),
    transmission_no  integer     NOT NULL CHECK (transmission_no >= 1),
    uri              text        NOT NULL,
    manifest_uri     text        NOT NULL,
    sent_by          text        NOT NULL,
    reason           text,
    sent_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, transmission_no)
);

-- The journal documents (journal x currency) each batch carries: a document is sent once per ERP.
CREATE TABLE erp_export_document (
    tenant_id   text    NOT NULL,
    erp         text    NOT NULL,
    journal_id  text    NOT NULL,
    currency    char(3) NOT NULL,
    batch_id    bigint  NOT NULL REFERENCES erp_export_batch (batch_id),
    doc_no      text    NOT NULL,
    PRIMARY KEY (tenant_id, erp, journal_id, currency)
);
