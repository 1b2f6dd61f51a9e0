"""The private tables of the sequence-service (schema `sequences_private` by default).

All are projections, rebuilt from the streams: `enrollments` is the aggregate's state as of
its subject's last sequence (a snapshot that decisions append against, and the durable
timers: `due_at` of active enrollments), `sequences` the sequence states, and `leads`,
`devices`, `tenants`, `media` what the service needs to know of other owners' things.
"""

from __future__ import annotations

DDL = (
    """CREATE TABLE IF NOT EXISTS tenants (
        tenant_id text PRIMARY KEY, timezone text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS devices (
        tenant_id text NOT NULL, device_id text NOT NULL,
        online boolean NOT NULL, deleted boolean NOT NULL,
        PRIMARY KEY (tenant_id, device_id))""",
    """CREATE TABLE IF NOT EXISTS media (
        tenant_id text NOT NULL, media_id text NOT NULL, ref bytea NOT NULL,
        PRIMARY KEY (tenant_id, media_id))""",
    """CREATE TABLE IF NOT EXISTS leads (
        tenant_id text NOT NULL, lead_id text NOT NULL, device_id text NOT NULL,
        status text NOT NULL, tags jsonb NOT NULL, opted_out boolean NOT NULL,
        deleted boolean NOT NULL, phone text NOT NULL, name text NOT NULL,
        attributes jsonb NOT NULL, PRIMARY KEY (tenant_id, lead_id))""",
    "CREATE INDEX IF NOT EXISTS leads_by_device ON leads (tenant_id, device_id)",
    """CREATE TABLE IF NOT EXISTS sequences (
        tenant_id text NOT NULL, sequence_id text NOT NULL, status text NOT NULL,
        has_triggers boolean NOT NULL, state bytea NOT NULL, last_seq bigint NOT NULL,
        PRIMARY KEY (tenant_id, sequence_id))""",
    """CREATE TABLE IF NOT EXISTS enrollments (
        tenant_id text NOT NULL, enrollment_id text NOT NULL, sequence_id text NOT NULL,
        lead_id text NOT NULL, nth integer NOT NULL, status text NOT NULL,
        reason text NOT NULL, due_at timestamptz, started_at timestamptz NOT NULL,
        sent integer NOT NULL, failed integer NOT NULL, state bytea NOT NULL,
        last_seq bigint NOT NULL, PRIMARY KEY (tenant_id, enrollment_id))""",
    """CREATE INDEX IF NOT EXISTS enrollments_due ON enrollments (due_at, tenant_id, enrollment_id)
        WHERE status = 'active' AND due_at IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS enrollments_by_lead
        ON enrollments (tenant_id, lead_id, sequence_id, nth)""",
    """CREATE INDEX IF NOT EXISTS enrollments_by_sequence
        ON enrollments (tenant_id, sequence_id, status)""",
)

UPSERT_LEADS = """
INSERT INTO leads
SELECT t, l, d, s, tg::jsonb, o, x, p, n, a::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[],
            $7::boolean[], $8::text[], $9::text[], $10::text[]) AS u(t, l, d, s, tg, o, x, p, n, a)
ON CONFLICT (tenant_id, lead_id) DO UPDATE SET
    device_id = EXCLUDED.device_id, status = EXCLUDED.status, tags = EXCLUDED.tags,
    opted_out = EXCLUDED.opted_out, deleted = EXCLUDED.deleted, phone = EXCLUDED.phone,
    name = EXCLUDED.name, attributes = EXCLUDED.attributes
"""

UPSERT_ENROLLMENTS = """
INSERT INTO enrollments
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[],
                     $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                     $10::integer[], $11::integer[], $12::bytea[], $13::bigint[])
ON CONFLICT (tenant_id, enrollment_id) DO UPDATE SET
    status = EXCLUDED.status, reason = EXCLUDED.reason, due_at = EXCLUDED.due_at,
    sent = EXCLUDED.sent, failed = EXCLUDED.failed, state = EXCLUDED.state,
    last_seq = EXCLUDED.last_seq
"""

UPSERT_SEQUENCES = """
INSERT INTO sequences
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::bytea[],
                     $6::bigint[])
ON CONFLICT (tenant_id, sequence_id) DO UPDATE SET
    status = EXCLUDED.status, has_triggers = EXCLUDED.has_triggers, state = EXCLUDED.state,
    last_seq = EXCLUDED.last_seq
"""

KEYS = "SELECT * FROM unnest($1::text[], $2::text[])"
"""(tenant, id) pairs, for `WHERE (tenant_id, x_id) IN (KEYS)`."""
