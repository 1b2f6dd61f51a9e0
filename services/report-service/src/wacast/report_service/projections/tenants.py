"""Tenant rows (name, timezone) from the TENANTS stream; API keys stay with the api-gateway."""

from __future__ import annotations

from collections.abc import Sequence

from wacast.contracts import tenants as tn
from wacast.report_service.projections.tables import Table
from wacast.runtime.projection import DbConnection, Envelope

TENANTS = Table(
    "tenants",
    "tenant_id",
    (
        ("tenant_id", "text"),
        ("name", "text"),
        ("timezone", "text"),
        ("default_region", "text"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ),
)


async def apply(conn: DbConnection, batch: Sequence[Envelope]) -> None:
    keys = {(e.event.tenant_id, e.event.tenant_id) for e in batch}
    rows = {k[0]: r for k, r in (await TENANTS.load(conn, keys)).items()}
    for env in batch:
        event = env.event
        if isinstance(event, tn.TenantCreated):
            rows.setdefault(
                event.tenant_id,
                {
                    "tenant_id": event.tenant_id,
                    "name": event.name,
                    "timezone": event.timezone,
                    "default_region": event.default_region,
                    "created_at": event.occurred_at,
                    "updated_at": event.occurred_at,
                },
            )
        elif isinstance(event, tn.TenantSettingsChanged) and event.tenant_id in rows:
            rows[event.tenant_id].update(
                name=event.name,
                timezone=event.timezone,
                default_region=event.default_region,
                updated_at=event.occurred_at,
            )
    await TENANTS.upsert(conn, rows.values())
