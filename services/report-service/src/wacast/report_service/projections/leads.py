"""Leads and lead imports from the LEADS stream.

A lead deleted by request stays as a hidden row (`deleted_at`) so that old message lists
still show whom they went to; a lead deleted with its device is removed. An erased lead
loses every row in every table (its conversation too, and what its phone wrote as an unknown
contact) and is tombstoned, so a replay never brings it back.
A lead whose device was deleted is `gone` (hidden), whichever stream was applied first.
"""

from __future__ import annotations

from collections.abc import Sequence

from wacast.contracts import leads as ld
from wacast.report_service.projections import conversations, messages
from wacast.report_service.projections.tables import (
    Key,
    Row,
    Table,
    lock_exclusive,
    lock_shared,
    to_json,
    tombstoned,
)
from wacast.runtime.projection import DbConnection, Envelope

LEADS = Table(
    "leads",
    "lead_id",
    (
        ("tenant_id", "text"),
        ("lead_id", "text"),
        ("seq", "bigint"),
        ("phone", "text"),
        ("name", "text"),
        ("device_id", "text"),
        ("status", "text"),
        ("tags", "jsonb"),
        ("attributes", "jsonb"),
        ("opted_out", "boolean"),
        ("opted_out_at", "timestamptz"),
        ("import_id", "text"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("deleted_at", "timestamptz"),
        ("gone", "boolean"),
    ),
)

IMPORTS = Table(
    "lead_imports",
    "import_id",
    (
        ("tenant_id", "text"),
        ("import_id", "text"),
        ("filename", "text"),
        ("status", "text"),
        ("total_rows", "integer"),
        ("rows_done", "integer"),
        ("created", "integer"),
        ("updated", "integer"),
        ("failed", "integer"),
        ("reason", "text"),
        ("detail", "text"),
        ("started_at", "timestamptz"),
        ("finished_at", "timestamptz"),
    ),
)

LEAD_EVENTS = (
    ld.LeadCreated,
    ld.LeadUpdated,
    ld.LeadStatusChanged,
    ld.LeadTagsChanged,
    ld.LeadDeviceAssigned,
    ld.LeadOptedOut,
    ld.LeadOptedIn,
    ld.LeadDeleted,
    ld.LeadErased,
)
IMPORT_EVENTS = (
    ld.LeadImportStarted,
    ld.LeadImportProgressed,
    ld.LeadImportRowsFailed,
    ld.LeadImportCompleted,
    ld.LeadImportFailed,
)


def created(env: Envelope, event: ld.LeadCreated) -> Row:
    return {
        "tenant_id": event.tenant_id,
        "lead_id": event.lead_id,
        "seq": env.seq,
        "phone": event.phone,
        "name": event.name,
        "device_id": event.device_id,
        "status": event.status,
        "tags": to_json(event.tags),
        "attributes": to_json(event.attributes),
        "opted_out": False,
        "opted_out_at": None,
        "import_id": event.import_id,
        "created_at": event.occurred_at,
        "updated_at": event.occurred_at,
        "deleted_at": None,
        "gone": False,
    }


def evolve(row: Row, event: ld.LeadEvent) -> None:
    at = event.occurred_at
    row["updated_at"] = at
    if isinstance(event, ld.LeadUpdated):
        if event.phone is not None:
            row["phone"] = event.phone
        if event.name is not None:
            row["name"] = event.name
        if event.attributes is not None:
            row["attributes"] = to_json(event.attributes)
    elif isinstance(event, ld.LeadStatusChanged):
        row["status"] = event.status
    elif isinstance(event, ld.LeadTagsChanged):
        row["tags"] = to_json(event.tags)
    elif isinstance(event, ld.LeadDeviceAssigned):
        row["device_id"] = event.device_id
    elif isinstance(event, ld.LeadOptedOut):
        row.update(opted_out=True, opted_out_at=at)
    elif isinstance(event, ld.LeadOptedIn):
        row.update(opted_out=False, opted_out_at=None)
    elif isinstance(event, ld.LeadDeleted):
        row["deleted_at"] = at


CHANGES = (
    ld.LeadUpdated,
    ld.LeadStatusChanged,
    ld.LeadTagsChanged,
    ld.LeadDeviceAssigned,
    ld.LeadOptedOut,
    ld.LeadOptedIn,
    ld.LeadDeleted,
)
"""Changes of an existing lead that an open lead page shows (see `LiveLead`)."""


async def apply(conn: DbConnection, batch: Sequence[Envelope]) -> set[Key]:
    """Apply a batch; returns the (tenant, lead) pairs that changed (not created)."""
    lead_events = [e for e in batch if isinstance(e.event, LEAD_EVENTS)]
    import_events = [e for e in batch if isinstance(e.event, IMPORT_EVENTS)]
    changed: set[Key] = set()
    if lead_events:
        changed = await apply_leads(conn, lead_events)
    if import_events:
        await apply_imports(conn, import_events)
    return changed


async def apply_leads(conn: DbConnection, batch: Sequence[Envelope]) -> set[Key]:
    erasing = any(isinstance(e.event, ld.LeadErased) for e in batch)
    await (lock_exclusive if erasing else lock_shared)(conn)
    keys = {(e.event.tenant_id, e.event.lead_id) for e in batch}  # type: ignore[attr-defined]
    erased = await tombstoned(conn, "erased_leads", "lead_id", keys)
    rows = await LEADS.load(conn, keys - erased)
    devices = {
        (e.event.tenant_id, e.event.device_id)
        for e in batch
        if isinstance(e.event, ld.LeadCreated | ld.LeadDeviceAssigned) and e.event.device_id
    }
    deleted_devices = await tombstoned(conn, "deleted_devices", "device_id", devices)
    removed: set[Key] = set()
    newly_erased: set[Key] = set()
    phones: list[tuple[str, str]] = []
    changed: set[Key] = set()
    for env in batch:
        event: ld.LeadEvent = env.event  # type: ignore[assignment]
        key = (event.tenant_id, event.lead_id)  # type: ignore[union-attr]
        if key in erased or key in newly_erased:
            continue
        if isinstance(event, ld.LeadErased):
            newly_erased.add(key)
            gone = rows.pop(key, None)
            if gone is not None:
                phones.append((key[0], gone["phone"]))
            continue
        if isinstance(event, CHANGES):
            changed.add(key)
        if isinstance(event, ld.LeadCreated):
            if key in rows:
                continue
            rows[key] = created(env, event)
            removed.discard(key)
        elif key not in rows:
            continue
        else:
            evolve(rows[key], event)
        row = rows[key]
        if isinstance(event, ld.LeadDeleted) and event.reason == "device_deleted":
            removed.add(key)
            rows.pop(key)
            continue
        if isinstance(event, ld.LeadCreated | ld.LeadDeviceAssigned):
            row["gone"] = (event.tenant_id, row["device_id"]) in deleted_devices
    await LEADS.upsert(conn, rows.values())
    await LEADS.delete(conn, removed | newly_erased)
    if newly_erased:
        await erase(conn, newly_erased, phones)
    return changed - newly_erased


async def erase(conn: DbConnection, keys: set[Key], phones: list[tuple[str, str]]) -> None:
    """Every row of these leads goes, with what their phones (`(tenant, phone)`) wrote as
    unknown contacts; the tombstone keeps replays from storing them again."""
    tenants = [k[0] for k in keys]
    ids = [k[1] for k in keys]
    await conn.execute(
        "INSERT INTO erased_leads (tenant_id, lead_id) "
        "SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        tenants,
        ids,
    )
    await conn.execute(
        "DELETE FROM enrollments t USING unnest($1::text[], $2::text[]) AS k(tenant_id, lead_id) "
        "WHERE t.tenant_id = k.tenant_id AND t.lead_id = k.lead_id",
        tenants,
        ids,
    )
    await messages.forget_leads(conn, tenants, ids)
    await conversations.forget_leads(conn, tenants, ids, phones)


def import_started(event: ld.LeadImportStarted) -> Row:
    return {
        "tenant_id": event.tenant_id,
        "import_id": event.import_id,
        "filename": event.filename,
        "status": "running",
        "total_rows": event.total_rows,
        "rows_done": 0,
        "created": 0,
        "updated": 0,
        "failed": 0,
        "reason": "",
        "detail": "",
        "started_at": event.occurred_at,
        "finished_at": None,
    }


async def apply_imports(conn: DbConnection, batch: Sequence[Envelope]) -> None:
    keys = {(e.event.tenant_id, e.event.import_id) for e in batch}  # type: ignore[attr-defined]
    rows = await IMPORTS.load(conn, keys)
    errors: list[tuple[str, str, int, str]] = []
    for env in batch:
        event = env.event
        key = (event.tenant_id, event.import_id)  # type: ignore[attr-defined]
        if isinstance(event, ld.LeadImportStarted):
            rows.setdefault(key, import_started(event))
            continue
        row = rows.get(key)
        if row is None:
            continue
        if isinstance(event, ld.LeadImportProgressed):
            row.update(
                rows_done=max(row["rows_done"], event.rows_done),
                created=event.created,
                updated=event.updated,
                failed=event.failed,
            )
        elif isinstance(event, ld.LeadImportRowsFailed):
            errors += [(key[0], key[1], e.row, e.reason) for e in event.errors]
        elif isinstance(event, ld.LeadImportCompleted):
            row.update(
                status="completed",
                rows_done=event.rows,
                total_rows=event.rows,
                created=event.created,
                updated=event.updated,
                failed=event.failed,
                finished_at=event.occurred_at,
            )
        elif isinstance(event, ld.LeadImportFailed):
            row.update(
                status="failed",
                reason=event.reason,
                detail=event.detail,
                finished_at=event.occurred_at,
            )
    await IMPORTS.upsert(conn, rows.values())
    if errors:
        columns = list(zip(*errors, strict=True))
        await conn.execute(
            "INSERT INTO lead_import_errors (tenant_id, import_id, row_number, reason) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[]) "
            "ON CONFLICT DO NOTHING",
            *columns,
        )
