"""The campaign-service's private tables: what its decisions need from the streams.

Projection `campaigns_private` (schema of the same name) keeps tenants' phone region and
timezone (TENANTS), devices and whether they are connected (DEVICES), leads with what
audiences filter on and what messages are rendered from (LEADS), unfinished imports, and
campaigns by status and due time (CAMPAIGNS). No other service reads these tables; they
are rebuilt from the streams like any projection. A lead's row goes on `LeadDeleted`, so an
erased lead leaves nothing here.

Consecutive events that write with the same statement go to Postgres in one `executemany`,
so an import's thousands of `LeadCreated` cost a few round trips per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wacast.contracts import campaigns as c
from wacast.contracts import devices as d
from wacast.contracts import leads as ld
from wacast.contracts import tenants as tn
from wacast.contracts.base import encode
from wacast.contracts.streams import CAMPAIGNS, DEVICES, LEADS, TENANTS, StreamSpec
from wacast.runtime.projection import DbConnection, Envelope

NAME = "campaigns_private"
SCHEMA = "campaigns_private"

DDL = """
CREATE TABLE IF NOT EXISTS tenants (
    tenant_id text PRIMARY KEY,
    default_region text NOT NULL,
    timezone text NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    tenant_id text NOT NULL,
    device_id text NOT NULL,
    connected boolean NOT NULL DEFAULT false,
    deleted boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, device_id)
);
CREATE TABLE IF NOT EXISTS leads (
    tenant_id text NOT NULL,
    lead_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    created_seq bigint NOT NULL,
    phone text NOT NULL,
    name text NOT NULL,
    device_id text NOT NULL,
    status text NOT NULL,
    tags text[] NOT NULL,
    attributes jsonb NOT NULL,
    opted_out boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, lead_id)
);
CREATE INDEX IF NOT EXISTS leads_by_device ON leads (tenant_id, device_id, lead_id);
CREATE TABLE IF NOT EXISTS imports (
    tenant_id text NOT NULL,
    import_id text NOT NULL,
    finished boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, import_id)
);
CREATE TABLE IF NOT EXISTS campaigns (
    tenant_id text NOT NULL,
    campaign_id text NOT NULL,
    status text NOT NULL,
    schedule_at timestamptz,
    completed_at timestamptz,
    PRIMARY KEY (tenant_id, campaign_id)
);
CREATE INDEX IF NOT EXISTS campaigns_by_status ON campaigns (status, schedule_at);
"""

_DEVICE = (
    "INSERT INTO devices (tenant_id, device_id, connected, deleted) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (tenant_id, device_id) DO UPDATE SET connected = $3, "
    "deleted = devices.deleted OR $4"
)
_DEVICE_SEEN = "INSERT INTO devices (tenant_id, device_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_LEAD_NEW = (
    "INSERT INTO leads (tenant_id, lead_id, seq, created_seq, phone, name, device_id, status, "
    "tags, attributes) VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9::jsonb) "
    "ON CONFLICT DO NOTHING"
)
_LEAD_SET = {
    "contact": "phone = COALESCE($4, phone), name = COALESCE($5, name), "
    "attributes = COALESCE($6::jsonb, attributes)",
    "status": "status = $4",
    "tags": "tags = $4",
    "device": "device_id = $4",
    "opt": "opted_out = $4",
}
_LEAD_GONE = "DELETE FROM leads WHERE tenant_id = $1 AND lead_id = $2"
_CAMPAIGN_NEW = (
    "INSERT INTO campaigns (tenant_id, campaign_id, status, schedule_at) "
    "VALUES ($1, $2, 'pending', $3) ON CONFLICT DO NOTHING"
)

Statement = tuple[str, tuple[Any, ...]]


def _lead_update(kind: str, e: ld.LeadEventBase, seq: int, *values: Any) -> Statement:
    sql = f"UPDATE leads SET seq = $3, {_LEAD_SET[kind]} WHERE tenant_id = $1 AND lead_id = $2"
    return sql, (e.tenant_id, e.lead_id, seq, *values)


def _tenant(e: tn.TenantCreated | tn.TenantSettingsChanged) -> Statement:
    return (
        "INSERT INTO tenants VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE "
        "SET default_region = $2, timezone = $3",
        (e.tenant_id, e.default_region.upper(), e.timezone),
    )


def statement(envelope: Envelope) -> Statement | None:
    """The one write an event makes here (None: it changes nothing here)."""
    e, seq = envelope.event, envelope.seq
    match e:
        case tn.TenantCreated() | tn.TenantSettingsChanged():
            return _tenant(e)
        case d.DeviceRegistered() | d.DevicePaired() | d.DeviceRenamed():
            return _DEVICE_SEEN, (e.tenant_id, e.device_id)
        case d.DeviceConnected():
            return _DEVICE, (e.tenant_id, e.device_id, True, False)
        case d.DeviceDisconnected() | d.DeviceLoggedOut() | d.DeviceBanned():
            return _DEVICE, (e.tenant_id, e.device_id, False, False)
        case d.DeviceDeleteRequested() | d.DeviceDeleted():
            return _DEVICE, (e.tenant_id, e.device_id, False, True)
        case ld.LeadCreated():
            attributes = encode(e.attributes).decode()
            return _LEAD_NEW, (
                e.tenant_id,
                e.lead_id,
                seq,
                e.phone,
                e.name,
                e.device_id,
                e.status,
                e.tags,
                attributes,
            )
        case ld.LeadUpdated():
            changed = None if e.attributes is None else encode(e.attributes).decode()
            return _lead_update("contact", e, seq, e.phone, e.name, changed)
        case ld.LeadStatusChanged():
            return _lead_update("status", e, seq, e.status)
        case ld.LeadTagsChanged():
            return _lead_update("tags", e, seq, e.tags)
        case ld.LeadDeviceAssigned():
            return _lead_update("device", e, seq, e.device_id)
        case ld.LeadOptedOut() | ld.LeadOptedIn():
            return _lead_update("opt", e, seq, isinstance(e, ld.LeadOptedOut))
        case ld.LeadDeleted() | ld.LeadErased():
            return _LEAD_GONE, (e.tenant_id, e.lead_id)
        case ld.LeadImportStarted():
            return "INSERT INTO imports VALUES ($1, $2, false) ON CONFLICT DO NOTHING", (
                e.tenant_id,
                e.import_id,
            )
        case ld.LeadImportCompleted() | ld.LeadImportFailed():
            return "UPDATE imports SET finished = true WHERE tenant_id = $1 AND import_id = $2", (
                e.tenant_id,
                e.import_id,
            )
        case c.CampaignCreated():
            return _CAMPAIGN_NEW, (e.tenant_id, e.campaign_id, e.schedule_at)
        case c.CampaignScheduled():
            return _campaign(e, "schedule_at = $3", e.schedule_at)
        case c.CampaignTriggered() | c.CampaignResumed():
            return _campaign(e, "status = 'triggered'")
        case c.CampaignPaused():
            return _campaign(e, "status = 'paused'")
        case c.CampaignCompleted():
            return _campaign(e, "status = 'completed', completed_at = $3", e.occurred_at)
        case c.CampaignFinished():
            return _campaign(e, "status = 'finished'")
        case c.CampaignCancelled():
            return _campaign(e, "status = 'cancelled'")
        case c.CampaignFailed():
            return _campaign(e, "status = 'failed'")
    return None


def _campaign(e: c.CampaignEventBase, assignments: str, *values: Any) -> Statement:
    return (
        f"UPDATE campaigns SET {assignments} WHERE tenant_id = $1 AND campaign_id = $2",
        (e.tenant_id, e.campaign_id, *values),
    )


async def write_runs(conn: DbConnection, statements: Sequence[Statement]) -> None:
    """Write in order; consecutive statements with the same SQL go as one executemany."""
    run: list[tuple[Any, ...]] = []
    sql = ""
    for next_sql, args in statements:
        if next_sql != sql and run:
            await conn.executemany(sql, run)
            run = []
        sql = next_sql
        run.append(args)
    if run:
        await conn.executemany(sql, run)


class PrivateProjection:
    """Tenants, devices, leads, imports and campaigns, as the service's decisions need them."""

    name = NAME
    streams: Sequence[StreamSpec] = (TENANTS, DEVICES, LEADS, CAMPAIGNS)
    kinds = {"TENANTS": ("tenant",), "LEADS": ("lead", "leadimport")}
    """Phone claims and API keys are not needed here."""

    def __init__(self, campaigns_changed: Callable[[], None] = lambda: None) -> None:
        self.campaigns_changed = campaigns_changed
        """Called after a batch of campaign events: the scheduler and completion look again."""

    async def migrate(self, conn: DbConnection) -> None:
        await conn.execute(DDL)

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        statements = [s for s in map(statement, batch) if s is not None]
        await write_runs(conn, statements)
        if batch and batch[0].stream == CAMPAIGNS.key:
            self.campaigns_changed()
