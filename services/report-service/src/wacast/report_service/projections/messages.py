"""Messages and campaign counters from the MESSAGES stream.

Status: pending (requested, accepted, or back after a retry is scheduled) -> queued
(dispatching) -> sent -> delivered -> read; or failed (`MessageFailed`, or `MessageCancelled`
with its reason). It never goes backwards: a late delivery receipt after `read` keeps
`read`, nothing moves a failed message, and a retry only takes a message that was not sent
back to pending. A row is created by the send request alone; events of a message whose
request is unknown (erased, or its device deleted) are ignored.

`sent_seq` is where the message was first known sent in the stream: a conversation is in
stream order, which no clock of any service can disorder.

`campaign_counts` holds, per campaign, device, status and failure reason, how many messages
are there: each status change moves one unit, so a report reads a handful of rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from wacast.contracts import messages as m
from wacast.report_service.projections.tables import Key, Row, Table, lock_shared, tombstoned
from wacast.runtime.projection import DbConnection, Envelope

MESSAGES = Table(
    "messages",
    "message_id",
    (
        ("tenant_id", "text"),
        ("message_id", "text"),
        ("seq", "bigint"),
        ("origin", "text"),
        ("campaign_id", "text"),
        ("sequence_id", "text"),
        ("enrollment_id", "text"),
        ("step_id", "text"),
        ("lead_id", "text"),
        ("device_id", "text"),
        ("status", "text"),
        ("status_group", "text"),
        ("reason", "text"),
        ("attempt", "integer"),
        ("text", "text"),
        ("media_id", "text"),
        ("requested_at", "timestamptz"),
        ("queued_at", "timestamptz"),
        ("sent_at", "timestamptz"),
        ("delivered_at", "timestamptz"),
        ("read_at", "timestamptz"),
        ("failed_at", "timestamptz"),
        ("replied_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("sent_seq", "bigint"),
    ),
)

RANK = {"pending": 0, "queued": 1, "sent": 2, "delivered": 3, "read": 4}
GROUP = {
    "pending": "pending",
    "queued": "pending",
    "sent": "success",
    "delivered": "success",
    "read": "success",
    "failed": "failed",
}
SEND_BUCKET = timedelta(minutes=15)
"""Sends are counted per device in 15-minute buckets: every timezone's midnight is on one."""
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

MESSAGE_EVENTS = (
    m.MessageRequested,
    m.MessageAccepted,
    m.MessageDispatching,
    m.MessageRetryScheduled,
    m.MessageCancelled,
    m.MessageSent,
    m.MessageDelivered,
    m.MessageRead,
    m.MessageFailed,
    m.MessageReplied,
)

CountKey = tuple[str, str, str, str, str]
"""(tenant, campaign, device, status, reason)"""


def requested(env: Envelope, event: m.MessageRequested) -> Row:
    campaign = event.origin == "campaign"
    return {
        "tenant_id": event.tenant_id,
        "message_id": event.message_id,
        "seq": env.seq,
        "origin": event.origin,
        "campaign_id": event.origin_id if campaign else None,
        "sequence_id": None if campaign else event.sequence_id,
        "enrollment_id": None if campaign else event.origin_id,
        "step_id": event.step_id,
        "lead_id": event.lead_id,
        "device_id": event.device_id,
        "status": "pending",
        "status_group": "pending",
        "reason": "",
        "attempt": 1,
        "text": event.content.text,
        "media_id": event.content.media_id,
        "requested_at": event.occurred_at,
        "queued_at": None,
        "sent_at": None,
        "delivered_at": None,
        "read_at": None,
        "failed_at": None,
        "replied_at": None,
        "updated_at": event.occurred_at,
        "sent_seq": None,
    }


def evolve(row: Row, event: m.MessageEvent) -> bool:
    """Move `row` by `event`, never backwards; False when nothing changed."""
    before = (row["status"], row["attempt"], row["sent_at"], row["delivered_at"], row["read_at"])
    before_reply = row["replied_at"]
    at = event.occurred_at
    waiting = row["status"] in ("pending", "queued")
    if isinstance(event, m.MessageDispatching):
        if waiting:
            row.update(status="queued", queued_at=at, attempt=event.attempt)
    elif isinstance(event, m.MessageRetryScheduled):
        if waiting:
            row.update(status="pending", attempt=event.attempt)
    elif isinstance(event, m.MessageCancelled | m.MessageFailed):
        if waiting:
            row.update(status="failed", reason=event.reason, failed_at=at)
            if isinstance(event, m.MessageFailed):
                row["attempt"] = event.attempt
    elif isinstance(event, m.MessageSent | m.MessageDelivered | m.MessageRead):
        _reached(row, event, at)
    elif isinstance(event, m.MessageReplied):
        row["replied_at"] = row["replied_at"] or at
    after = (row["status"], row["attempt"], row["sent_at"], row["delivered_at"], row["read_at"])
    if (
        after == before
        and row["replied_at"] == before_reply
        and not (isinstance(event, m.MessageDispatching) and waiting)
    ):
        return False
    row["status_group"] = GROUP[row["status"]]
    row["updated_at"] = at
    return True


def _reached(
    row: Row, event: m.MessageSent | m.MessageDelivered | m.MessageRead, at: datetime
) -> None:
    if isinstance(event, m.MessageSent):
        target, stamp = "sent", "sent_at"
        if row["status"] != "failed":
            row["attempt"] = event.attempt
    elif isinstance(event, m.MessageDelivered):
        target, stamp = "delivered", "delivered_at"
    else:
        target, stamp = "read", "read_at"
    if row["status"] == "failed":
        return
    if row[stamp] is None:
        row[stamp] = at
    if row["sent_at"] is None:
        row["sent_at"] = at
    if RANK[row["status"]] < RANK[target]:
        row["status"] = target


def _message_key(event: m.MessageEvent) -> Key | None:
    if isinstance(event, MESSAGE_EVENTS):
        return (event.tenant_id, event.message_id)
    return None


def bucket_of(at: datetime) -> datetime:
    return at - ((at - EPOCH) % SEND_BUCKET)


async def apply(conn: DbConnection, batch: Sequence[Envelope]) -> set[Key]:
    """Apply a batch; returns the (tenant, campaign) pairs whose counts changed."""
    relevant = [(e, _message_key(e.event)) for e in batch]  # type: ignore[arg-type]
    keyed = [(e, k) for e, k in relevant if k is not None]
    if not keyed:
        return set()
    await lock_shared(conn)
    keys = {k for _, k in keyed}
    rows = await MESSAGES.load(conn, keys)
    before = {
        k: (r["campaign_id"], r["device_id"], r["status"], r["reason"]) for k, r in rows.items()
    }
    requests = [e.event for e, _ in keyed if isinstance(e.event, m.MessageRequested)]
    devices = {(r.tenant_id, r.device_id) for r in requests}
    leads = {(r.tenant_id, r.lead_id) for r in requests}
    deleted_devices = await tombstoned(conn, "deleted_devices", "device_id", devices)
    erased_leads = await tombstoned(conn, "erased_leads", "lead_id", leads)
    sends: Counter[tuple[str, str, datetime]] = Counter()
    changed: dict[Key, Row] = {}
    for env, key in keyed:
        event = env.event
        if isinstance(event, m.MessageRequested):
            if key in rows:
                continue
            if (event.tenant_id, event.device_id) in deleted_devices:
                continue
            if (event.tenant_id, event.lead_id) in erased_leads:
                continue
            rows[key] = requested(env, event)
        elif key not in rows:
            continue
        else:
            row = rows[key]
            unsent = row["sent_at"] is None
            if not evolve(row, event):  # type: ignore[arg-type]
                continue
            if unsent and row["sent_at"] is not None:
                row["sent_seq"] = env.seq
                sends[(key[0], row["device_id"], bucket_of(row["sent_at"]))] += 1
        changed[key] = rows[key]
    await MESSAGES.upsert(conn, changed.values())
    counts: Counter[CountKey] = Counter()
    outcomes: dict[Key, tuple[datetime, datetime]] = {}
    for key, row in changed.items():
        campaign = row["campaign_id"]
        if campaign is None:
            continue
        old = before.get(key)
        new = (campaign, row["device_id"], row["status"], row["reason"])
        if old == new:
            continue
        if old is not None:
            counts[(key[0], *old)] -= 1
        counts[(key[0], *new)] += 1
        was_waiting = old is None or old[2] in ("pending", "queued")
        if was_waiting and row["status"] not in ("pending", "queued"):
            at = row["sent_at"] or row["failed_at"]
            first, last = outcomes.get((key[0], campaign), (at, at))
            outcomes[(key[0], campaign)] = (min(first, at), max(last, at))
    await add_counts(conn, counts)
    await _outcome_times(conn, outcomes)
    await _sends(conn, sends)
    return {(t, c) for t, c, *_ in counts}


async def add_counts(conn: DbConnection, counts: Counter[CountKey]) -> None:
    items = sorted((k, n) for k, n in counts.items() if n)
    if not items:
        return
    columns = list(zip(*[(*k, n) for k, n in items], strict=True))
    await conn.execute(
        "INSERT INTO campaign_counts (tenant_id, campaign_id, device_id, status, reason, n) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
        "$6::integer[]) ON CONFLICT (tenant_id, campaign_id, device_id, status, reason) "
        "DO UPDATE SET n = campaign_counts.n + EXCLUDED.n",
        *columns,
    )
    await conn.execute(
        "DELETE FROM campaign_counts t USING unnest($1::text[], $2::text[], $3::text[], "
        "$4::text[], $5::text[]) AS k(tenant_id, campaign_id, device_id, status, reason) "
        "WHERE t.n = 0 AND t.tenant_id = k.tenant_id AND t.campaign_id = k.campaign_id "
        "AND t.device_id = k.device_id AND t.status = k.status AND t.reason = k.reason",
        *columns[:5],
    )


async def _outcome_times(
    conn: DbConnection, outcomes: dict[Key, tuple[datetime, datetime]]
) -> None:
    if not outcomes:
        return
    items = sorted(outcomes.items())
    await conn.execute(
        "INSERT INTO campaign_activity (tenant_id, campaign_id, first_outcome_at, last_outcome_at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) "
        "ON CONFLICT (tenant_id, campaign_id) DO UPDATE SET "
        "first_outcome_at = least(campaign_activity.first_outcome_at, EXCLUDED.first_outcome_at), "
        "last_outcome_at = greatest(campaign_activity.last_outcome_at, EXCLUDED.last_outcome_at)",
        [k[0] for k, _ in items],
        [k[1] for k, _ in items],
        [v[0] for _, v in items],
        [v[1] for _, v in items],
    )


async def _sends(conn: DbConnection, sends: Counter[tuple[str, str, datetime]]) -> None:
    if not sends:
        return
    items = sorted(sends.items())
    await conn.execute(
        "INSERT INTO device_sends (tenant_id, device_id, bucket, sent) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::integer[]) "
        "ON CONFLICT (tenant_id, device_id, bucket) DO UPDATE "
        "SET sent = device_sends.sent + EXCLUDED.sent",
        [k[0] for k, _ in items],
        [k[1] for k, _ in items],
        [k[2] for k, _ in items],
        [n for _, n in items],
    )


async def refresh_activity(conn: DbConnection, campaigns: set[Key]) -> None:
    """Work out the first and last outcome times of `campaigns` again from their messages
    (after some were deleted), as if the deleted ones had never been there."""
    if not campaigns:
        return
    tenants = [k[0] for k in sorted(campaigns)]
    ids = [k[1] for k in sorted(campaigns)]
    pairs = "unnest($1::text[], $2::text[]) AS k(tenant_id, campaign_id)"
    await conn.execute(
        f"DELETE FROM campaign_activity t USING {pairs} "
        "WHERE t.tenant_id = k.tenant_id AND t.campaign_id = k.campaign_id",
        tenants,
        ids,
    )
    await conn.execute(
        "INSERT INTO campaign_activity (tenant_id, campaign_id, first_outcome_at, last_outcome_at) "
        "SELECT m.tenant_id, m.campaign_id, min(coalesce(m.sent_at, m.failed_at)), "
        f"max(coalesce(m.sent_at, m.failed_at)) FROM messages m JOIN {pairs} "
        "ON m.tenant_id = k.tenant_id AND m.campaign_id = k.campaign_id "
        "WHERE coalesce(m.sent_at, m.failed_at) IS NOT NULL GROUP BY 1, 2",
        tenants,
        ids,
    )


async def forget_leads(conn: DbConnection, tenants: list[str], lead_ids: list[str]) -> None:
    """Delete every message of these leads, and take them out of the campaign counts."""
    gone = await conn.fetch(
        "DELETE FROM messages t USING unnest($1::text[], $2::text[]) AS k(tenant_id, lead_id) "
        "WHERE t.tenant_id = k.tenant_id AND t.lead_id = k.lead_id "
        "RETURNING t.tenant_id, t.campaign_id, t.device_id, t.status, t.reason",
        tenants,
        lead_ids,
    )
    counts: Counter[CountKey] = Counter()
    for r in gone:
        if r["campaign_id"] is not None:
            counts[
                (r["tenant_id"], r["campaign_id"], r["device_id"], r["status"], r["reason"])
            ] -= 1
    await add_counts(conn, counts)
    await refresh_activity(conn, {(k[0], k[1]) for k in counts})
