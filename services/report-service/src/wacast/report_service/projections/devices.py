"""Device board rows from the DEVICES stream; deleting a device removes its traces.

Status: registered `unpaired` -> `pairing` (until connected) -> `connected` /
`disconnected` / `logged_out` / `banned`. A device deletion (requested or done) records a
tombstone, deletes the device's row, its messages, their counts and its send counters, and
marks its leads `gone` (invariant 6); later events of the device are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from wacast.contracts import devices as d
from wacast.report_service.projections.messages import refresh_activity
from wacast.report_service.projections.tables import Key, Row, Table, lock_exclusive, tombstoned
from wacast.runtime.projection import DbConnection, Envelope

DEVICES = Table(
    "devices",
    "device_id",
    (
        ("tenant_id", "text"),
        ("device_id", "text"),
        ("seq", "bigint"),
        ("name", "text"),
        ("driver", "text"),
        ("status", "text"),
        ("phone", "text"),
        ("push_name", "text"),
        ("jid", "text"),
        ("last_seen_at", "timestamptz"),
        ("banned_until", "timestamptz"),
        ("ban_reason", "text"),
        ("pairing_method", "text"),
        ("daily_cap", "integer"),
        ("warmup", "boolean"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ),
)

DELETIONS = (d.DeviceDeleteRequested, d.DeviceDeleted)


def registered(env: Envelope, event: d.DeviceRegistered) -> Row:
    return {
        "tenant_id": event.tenant_id,
        "device_id": event.device_id,
        "seq": env.seq,
        "name": event.name,
        "driver": event.driver,
        "status": "unpaired",
        "phone": "",
        "push_name": "",
        "jid": "",
        "last_seen_at": None,
        "banned_until": None,
        "ban_reason": "",
        "pairing_method": None,
        "daily_cap": None,
        "warmup": False,
        "created_at": event.occurred_at,
        "updated_at": event.occurred_at,
    }


def evolve(row: Row, event: d.DeviceEvent) -> None:
    """Change `row` (an existing device) by `event`."""
    at = event.occurred_at
    row["updated_at"] = at
    if isinstance(event, d.DevicePairingStarted):
        row.update(status="pairing", pairing_method=event.method)
        if event.phone:
            row["phone"] = event.phone
    elif isinstance(event, d.DevicePairingFailed):
        row.update(status="logged_out" if row["jid"] else "unpaired", pairing_method=None)
    elif isinstance(event, d.DevicePaired):
        row.update(phone=event.phone, jid=event.jid, push_name=event.push_name)
    elif isinstance(event, d.DeviceConnected):
        row.update(
            status="connected",
            last_seen_at=at,
            pairing_method=None,
            banned_until=None,
            ban_reason="",
        )
    elif isinstance(event, d.DeviceDisconnected):
        row.update(status="disconnected", last_seen_at=at)
    elif isinstance(event, d.DeviceLoggedOut):
        row.update(status="logged_out", last_seen_at=at, pairing_method=None)
    elif isinstance(event, d.DeviceBanned):
        row.update(status="banned", banned_until=event.until, ban_reason=event.reason)
    elif isinstance(event, d.DeviceRenamed):
        row["name"] = event.name
    elif isinstance(event, d.DeviceLimitsChanged):
        row.update(daily_cap=event.daily_cap, warmup=event.warmup)


async def apply(conn: DbConnection, batch: Sequence[Envelope]) -> None:
    keys = {(e.event.tenant_id, e.event.device_id) for e in batch}  # type: ignore[attr-defined]
    if any(isinstance(e.event, DELETIONS) for e in batch):
        await lock_exclusive(conn)
    gone = await tombstoned(conn, "deleted_devices", "device_id", keys)
    rows = await DEVICES.load(conn, keys - gone)
    deleted: dict[Key, Envelope] = {}
    for env in batch:
        event: d.DeviceEvent = env.event  # type: ignore[assignment]
        key = (event.tenant_id, event.device_id)
        if key in gone or key in deleted:
            continue
        if isinstance(event, DELETIONS):
            deleted[key] = env
            rows.pop(key, None)
        elif isinstance(event, d.DeviceRegistered):
            rows.setdefault(key, registered(env, event))
        elif key in rows:
            evolve(rows[key], event)
    await DEVICES.upsert(conn, rows.values())
    if deleted:
        await delete_devices(conn, deleted)


async def delete_devices(conn: DbConnection, deleted: dict[Key, Envelope]) -> None:
    tenants = [k[0] for k in deleted]
    ids = [k[1] for k in deleted]
    at = [env.occurred_at for env in deleted.values()]
    pairs = "unnest($1::text[], $2::text[]) AS k(tenant_id, device_id)"
    match = "t.tenant_id = k.tenant_id AND t.device_id = k.device_id"
    await conn.execute(
        "INSERT INTO deleted_devices (tenant_id, device_id, deleted_at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) ON CONFLICT DO NOTHING",
        tenants,
        ids,
        at,
    )
    campaigns = await conn.fetch(
        f"SELECT DISTINCT t.tenant_id, t.campaign_id FROM campaign_counts t, {pairs} WHERE {match}",
        tenants,
        ids,
    )
    for table in ("devices", "messages", "inbound_messages", "campaign_counts", "device_sends"):
        await conn.execute(f"DELETE FROM {table} t USING {pairs} WHERE {match}", tenants, ids)
    await refresh_activity(conn, {(r[0], r[1]) for r in campaigns})
    await conn.execute(
        f"UPDATE leads t SET gone = true FROM {pairs} WHERE {match} AND NOT t.gone", tenants, ids
    )
