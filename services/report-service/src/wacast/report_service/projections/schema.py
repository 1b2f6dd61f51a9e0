"""The read-model tables. Created in the projection's schema (search_path set by the runner).

`inbound_messages` holds what people wrote: a lead's by lead id (its conversation is that
table and `messages`, merged at query time), an unknown contact's by contact key with the
sender's phone (the only inbound rows that keep a phone).

Rows never hold what another stream decides: cross-stream joins (lead names in a message
list, device names in a report) happen at query time. Two tombstone tables make the result
independent of the order in which streams are replayed: `deleted_devices` (a deleted
device's messages are never stored, its leads are `gone`) and `erased_leads` (an erased
lead's rows are never stored again).
"""

from __future__ import annotations

DDL = """
CREATE TABLE IF NOT EXISTS tenants (
    tenant_id text PRIMARY KEY,
    name text NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    default_region text NOT NULL DEFAULT 'US',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS devices (
    tenant_id text NOT NULL,
    device_id text NOT NULL,
    seq bigint NOT NULL,
    name text NOT NULL,
    driver text NOT NULL,
    status text NOT NULL,
    phone text NOT NULL DEFAULT '',
    push_name text NOT NULL DEFAULT '',
    jid text NOT NULL DEFAULT '',
    last_seen_at timestamptz,
    banned_until timestamptz,
    ban_reason text NOT NULL DEFAULT '',
    pairing_method text,
    daily_cap integer,
    warmup boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
);
CREATE INDEX IF NOT EXISTS devices_by_seq ON devices (tenant_id, seq);

CREATE TABLE IF NOT EXISTS deleted_devices (
    tenant_id text NOT NULL,
    device_id text NOT NULL,
    deleted_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
);

CREATE TABLE IF NOT EXISTS device_sends (
    tenant_id text NOT NULL,
    device_id text NOT NULL,
    bucket timestamptz NOT NULL,
    sent integer NOT NULL,
    PRIMARY KEY (tenant_id, device_id, bucket)
);

CREATE TABLE IF NOT EXISTS leads (
    tenant_id text NOT NULL,
    lead_id text NOT NULL,
    seq bigint NOT NULL,
    phone text NOT NULL,
    name text NOT NULL DEFAULT '',
    device_id text NOT NULL DEFAULT '',
    status text NOT NULL,
    tags jsonb NOT NULL DEFAULT '[]',
    attributes jsonb NOT NULL DEFAULT '{}',
    opted_out boolean NOT NULL DEFAULT false,
    opted_out_at timestamptz,
    import_id text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    gone boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, lead_id)
);
CREATE INDEX IF NOT EXISTS leads_by_seq ON leads (tenant_id, seq)
    WHERE deleted_at IS NULL AND NOT gone;
CREATE INDEX IF NOT EXISTS leads_by_device ON leads (tenant_id, device_id)
    WHERE deleted_at IS NULL AND NOT gone;
CREATE INDEX IF NOT EXISTS leads_by_tag ON leads USING gin (tags jsonb_path_ops);

CREATE TABLE IF NOT EXISTS erased_leads (
    tenant_id text NOT NULL,
    lead_id text NOT NULL,
    PRIMARY KEY (tenant_id, lead_id)
);

CREATE TABLE IF NOT EXISTS lead_imports (
    tenant_id text NOT NULL,
    import_id text NOT NULL,
    filename text NOT NULL,
    status text NOT NULL,
    total_rows integer,
    rows_done integer NOT NULL DEFAULT 0,
    created integer NOT NULL DEFAULT 0,
    updated integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    reason text NOT NULL DEFAULT '',
    detail text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    PRIMARY KEY (tenant_id, import_id)
);

CREATE TABLE IF NOT EXISTS lead_import_errors (
    tenant_id text NOT NULL,
    import_id text NOT NULL,
    row_number integer NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (tenant_id, import_id, row_number)
);

CREATE TABLE IF NOT EXISTS media (
    tenant_id text NOT NULL,
    media_id text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    mime text NOT NULL,
    bytes bigint NOT NULL,
    filename text NOT NULL DEFAULT '',
    sha256 text NOT NULL DEFAULT '',
    width integer,
    height integer,
    source text NOT NULL DEFAULT 'upload',
    source_url text NOT NULL DEFAULT '',
    original_bytes bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (tenant_id, media_id)
);
CREATE INDEX IF NOT EXISTS media_by_seq ON media (tenant_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE IF NOT EXISTS campaigns (
    tenant_id text NOT NULL,
    campaign_id text NOT NULL,
    seq bigint NOT NULL,
    name text NOT NULL,
    state text NOT NULL,
    failure_reason text NOT NULL DEFAULT '',
    audience jsonb NOT NULL,
    message jsonb NOT NULL,
    pacing jsonb NOT NULL,
    send_window jsonb,
    schedule_at timestamptz,
    audience_size integer NOT NULL DEFAULT 0,
    requested integer,
    created_at timestamptz NOT NULL,
    triggered_at timestamptz,
    fanout_done_at timestamptz,
    outcomes_at timestamptz,
    cancelled_at timestamptz,
    failed_at timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id)
);
CREATE INDEX IF NOT EXISTS campaigns_by_seq ON campaigns (tenant_id, seq);

CREATE TABLE IF NOT EXISTS campaign_counts (
    tenant_id text NOT NULL,
    campaign_id text NOT NULL,
    device_id text NOT NULL,
    status text NOT NULL,
    reason text NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, device_id, status, reason)
);

CREATE TABLE IF NOT EXISTS campaign_activity (
    tenant_id text NOT NULL,
    campaign_id text NOT NULL,
    first_outcome_at timestamptz NOT NULL,
    last_outcome_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id)
);

CREATE TABLE IF NOT EXISTS messages (
    tenant_id text NOT NULL,
    message_id text NOT NULL,
    seq bigint NOT NULL,
    origin text NOT NULL,
    campaign_id text,
    sequence_id text,
    enrollment_id text,
    step_id text NOT NULL DEFAULT '',
    lead_id text NOT NULL,
    device_id text NOT NULL,
    status text NOT NULL,
    status_group text NOT NULL,
    reason text NOT NULL DEFAULT '',
    attempt integer NOT NULL DEFAULT 1,
    text text NOT NULL DEFAULT '',
    media_id text NOT NULL DEFAULT '',
    requested_at timestamptz NOT NULL,
    queued_at timestamptz,
    sent_at timestamptz,
    delivered_at timestamptz,
    read_at timestamptz,
    failed_at timestamptz,
    replied_at timestamptz,
    updated_at timestamptz NOT NULL,
    sent_seq bigint,
    PRIMARY KEY (tenant_id, message_id)
);
ALTER TABLE messages ADD COLUMN IF NOT EXISTS sent_seq bigint;
CREATE INDEX IF NOT EXISTS messages_of_lead_in_order
    ON messages (tenant_id, lead_id, (coalesce(sent_seq, seq)));
CREATE INDEX IF NOT EXISTS messages_of_campaign ON messages (tenant_id, campaign_id, seq)
    WHERE campaign_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_of_campaign_group
    ON messages (tenant_id, campaign_id, status_group, seq) WHERE campaign_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_of_campaign_status
    ON messages (tenant_id, campaign_id, status, seq) WHERE campaign_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_of_campaign_device
    ON messages (tenant_id, campaign_id, device_id, seq) WHERE campaign_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_of_campaign_device_group
    ON messages (tenant_id, campaign_id, device_id, status_group, seq)
    WHERE campaign_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_of_sequence ON messages (tenant_id, sequence_id, status_group)
    WHERE sequence_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_of_lead ON messages (tenant_id, lead_id, seq);
CREATE INDEX IF NOT EXISTS messages_of_device ON messages (tenant_id, device_id);

CREATE TABLE IF NOT EXISTS inbound_messages (
    tenant_id text NOT NULL,
    inbound_id text NOT NULL,
    seq bigint NOT NULL,
    lead_id text NOT NULL DEFAULT '',
    contact_key text NOT NULL,
    sender text NOT NULL DEFAULT '',
    device_id text NOT NULL,
    text text NOT NULL DEFAULT '',
    media_type text NOT NULL DEFAULT '',
    in_reply_to text NOT NULL DEFAULT '',
    origin text,
    origin_id text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, inbound_id)
);
CREATE INDEX IF NOT EXISTS inbound_of_lead_in_order ON inbound_messages (tenant_id, lead_id, seq)
    WHERE lead_id <> '';
CREATE INDEX IF NOT EXISTS inbound_of_contact ON inbound_messages (tenant_id, contact_key)
    WHERE lead_id = '';
CREATE INDEX IF NOT EXISTS inbound_of_device ON inbound_messages (tenant_id, device_id);

CREATE TABLE IF NOT EXISTS sequences (
    tenant_id text NOT NULL,
    sequence_id text NOT NULL,
    seq bigint NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    steps jsonb NOT NULL,
    pacing jsonb NOT NULL,
    triggers jsonb NOT NULL,
    on_failure text NOT NULL,
    stop_on_reply text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sequence_id)
);
CREATE INDEX IF NOT EXISTS sequences_by_seq ON sequences (tenant_id, seq);

CREATE TABLE IF NOT EXISTS enrollments (
    tenant_id text NOT NULL,
    enrollment_id text NOT NULL,
    seq bigint NOT NULL,
    sequence_id text NOT NULL,
    lead_id text NOT NULL,
    device_id text NOT NULL DEFAULT '',
    status text NOT NULL,
    reason text NOT NULL DEFAULT '',
    source text NOT NULL DEFAULT 'api',
    steps_sent integer NOT NULL DEFAULT 0,
    last_step_id text NOT NULL DEFAULT '',
    next_step_id text NOT NULL DEFAULT '',
    next_due_at timestamptz,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, enrollment_id)
);
CREATE INDEX IF NOT EXISTS enrollments_of_sequence ON enrollments (tenant_id, sequence_id, seq);
CREATE INDEX IF NOT EXISTS enrollments_of_sequence_status
    ON enrollments (tenant_id, sequence_id, status);
CREATE INDEX IF NOT EXISTS enrollments_of_lead ON enrollments (tenant_id, lead_id);
"""

TABLES = (
    "tenants",
    "devices",
    "deleted_devices",
    "device_sends",
    "leads",
    "erased_leads",
    "lead_imports",
    "lead_import_errors",
    "media",
    "campaigns",
    "campaign_counts",
    "campaign_activity",
    "messages",
    "inbound_messages",
    "sequences",
    "enrollments",
)
"""Every table, for tests that compare a rebuild with the live tables."""
