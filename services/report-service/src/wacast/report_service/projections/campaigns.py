"""Campaign rows from the CAMPAIGNS stream.

`state` is what the campaign's own events say: pending (created or scheduled), triggered,
paused, completed (`CampaignCompleted`: every message has an outcome), failed or cancelled.
The public status `finished` (the receipt window closed after completion) and the counts
are worked out at query time. Terminal states stay.
"""

from __future__ import annotations

from collections.abc import Sequence

from wacast.contracts import campaigns as c
from wacast.report_service.projections.tables import Key, Row, Table, to_json
from wacast.runtime.projection import DbConnection, Envelope

CAMPAIGNS = Table(
    "campaigns",
    "campaign_id",
    (
        ("tenant_id", "text"),
        ("campaign_id", "text"),
        ("seq", "bigint"),
        ("name", "text"),
        ("state", "text"),
        ("failure_reason", "text"),
        ("audience", "jsonb"),
        ("message", "jsonb"),
        ("pacing", "jsonb"),
        ("send_window", "jsonb"),
        ("schedule_at", "timestamptz"),
        ("audience_size", "integer"),
        ("requested", "integer"),
        ("created_at", "timestamptz"),
        ("triggered_at", "timestamptz"),
        ("fanout_done_at", "timestamptz"),
        ("outcomes_at", "timestamptz"),
        ("cancelled_at", "timestamptz"),
        ("failed_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ),
)

TERMINAL = ("completed", "failed", "cancelled")


def created(env: Envelope, event: c.CampaignCreated) -> Row:
    return {
        "tenant_id": event.tenant_id,
        "campaign_id": event.campaign_id,
        "seq": env.seq,
        "name": event.name,
        "state": "pending",
        "failure_reason": "",
        "audience": to_json(event.audience),
        "message": to_json(event.message),
        "pacing": to_json(event.pacing),
        "send_window": None if event.send_window is None else to_json(event.send_window),
        "schedule_at": event.schedule_at,
        "audience_size": 0,
        "requested": None,
        "created_at": event.occurred_at,
        "triggered_at": None,
        "fanout_done_at": None,
        "outcomes_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "updated_at": event.occurred_at,
    }


def evolve(row: Row, event: c.CampaignEvent) -> None:
    at = event.occurred_at
    state = row["state"]
    row["updated_at"] = at
    if isinstance(event, c.CampaignScheduled):
        row["schedule_at"] = event.schedule_at
    elif isinstance(event, c.CampaignTriggered):
        if state == "pending":
            row.update(state="triggered", triggered_at=at, audience_size=event.audience_size)
    elif isinstance(event, c.CampaignPaused):
        if state == "triggered":
            row["state"] = "paused"
    elif isinstance(event, c.CampaignResumed):
        if state == "paused":
            row["state"] = "triggered"
    elif isinstance(event, c.CampaignCancelled):
        if state not in TERMINAL:
            row.update(state="cancelled", cancelled_at=at)
    elif isinstance(event, c.CampaignCompleted):
        # Every requested message has its final send outcome: the campaign is completed.
        row.update(fanout_done_at=at, requested=event.requested)
        if state in ("triggered", "paused"):
            row.update(state="completed", outcomes_at=at)
    elif isinstance(event, c.CampaignFinished):
        if row.get("outcomes_at") is None:
            row["outcomes_at"] = at
        if state in ("triggered", "paused"):
            row["state"] = "completed"
    elif isinstance(event, c.CampaignFailed) and state not in TERMINAL:
        row.update(state="failed", failure_reason=event.reason, failed_at=at)


async def apply(conn: DbConnection, batch: Sequence[Envelope]) -> set[Key]:
    keys = {(e.event.tenant_id, e.event.campaign_id) for e in batch}  # type: ignore[attr-defined]
    rows = await CAMPAIGNS.load(conn, keys)
    changed: set[Key] = set()
    for env in batch:
        event: c.CampaignEvent = env.event  # type: ignore[assignment]
        key = (event.tenant_id, event.campaign_id)
        if isinstance(event, c.CampaignCreated):
            rows.setdefault(key, created(env, event))
        elif key in rows:
            evolve(rows[key], event)
        else:
            continue
        changed.add(key)
    await CAMPAIGNS.upsert(conn, (rows[k] for k in changed))
    return changed
