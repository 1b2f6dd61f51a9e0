"""Campaign rules: pending -> triggered (once) -> completed -> finished, or failed / cancelled.

State is folded from the campaign's own subject. Facts that live elsewhere (audience size,
connected devices, running campaigns of the tenant) are read by the handler and passed in;
the decision itself is pure, and the append with the expected sequence it was based on
makes it the only one: of two replicas deciding at once, one wins and the other decides
again on the new state (and finds the campaign triggered already).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, TypedDict

from wacast.campaign_service.domain.errors import Refused, invalid, not_found
from wacast.contracts.base import Event
from wacast.contracts.campaigns import (
    CampaignCancelled,
    CampaignCompleted,
    CampaignCreated,
    CampaignFailed,
    CampaignFinished,
    CampaignPaused,
    CampaignResumed,
    CampaignScheduled,
    CampaignTriggered,
)
from wacast.contracts.values import (
    Audience,
    MessageContent,
    MessageCounts,
    Pacing,
    RetryPolicy,
    SendWindow,
)

Status = Literal["pending", "triggered", "paused", "completed", "finished", "failed", "cancelled"]
RUNNING: tuple[Status, ...] = ("triggered", "paused")
"""Statuses that hold one of the tenant's running-campaign slots."""
SCHEDULE_GRACE = timedelta(minutes=1)
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Campaign:
    tenant_id: str
    campaign_id: str
    seq: int = 0
    exists: bool = False
    status: Status = "pending"
    name: str = ""
    audience: Audience = field(default_factory=Audience)
    message: MessageContent | None = None
    schedule_at: datetime | None = None
    queued: bool = False
    pacing: Pacing = field(default_factory=Pacing)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    send_window: SendWindow | None = None
    trigger_id: str = ""
    leads_seq: int = 0
    audience_size: int = 0
    completed_at: datetime | None = None
    reason: str = ""


def evolve(c: Campaign, event: Event, seq: int) -> Campaign:
    c = replace(c, seq=seq)
    match event:
        case CampaignCreated():
            return replace(
                c,
                exists=True,
                name=event.name,
                audience=event.audience,
                message=event.message,
                schedule_at=event.schedule_at,
                pacing=event.pacing,
                retry=event.retry,
                send_window=event.send_window,
            )
        case CampaignScheduled():
            return replace(c, schedule_at=event.schedule_at, queued=event.queued)
        case CampaignTriggered():
            return replace(
                c,
                status="triggered",
                trigger_id=event.trigger_id,
                leads_seq=event.leads_seq,
                audience_size=event.audience_size,
            )
        case CampaignPaused():
            return replace(c, status="paused")
        case CampaignResumed():
            return replace(c, status="triggered")
        case CampaignCompleted():
            return replace(c, status="completed", completed_at=event.occurred_at)
        case CampaignFinished():
            return replace(c, status="finished")
        case CampaignCancelled():
            return replace(c, status="cancelled", reason=event.reason)
        case CampaignFailed():
            return replace(c, status="failed", reason=event.reason)
    return c


def replay(tenant_id: str, campaign_id: str, history: Iterable[tuple[int, Event]]) -> Campaign:
    c = Campaign(tenant_id, campaign_id)
    for seq, event in history:
        c = evolve(c, event, seq)
    return c


class _Ids(TypedDict):
    tenant_id: str
    occurred_at: datetime
    campaign_id: str


def _base(c: Campaign, now: datetime) -> _Ids:
    return {"tenant_id": c.tenant_id, "occurred_at": now, "campaign_id": c.campaign_id}


def _state(code: str, title: str, c: Campaign) -> Refused:
    return Refused(code, title, 409, f"campaign is {c.status}")


def _require(c: Campaign) -> None:
    if not c.exists:
        raise not_found("campaign", c.campaign_id)


def check_schedule(schedule_at: datetime, now: datetime) -> None:
    if schedule_at.tzinfo is None:
        raise invalid(
            "naive_datetime", "schedule_at needs a timezone", "e.g. 2030-01-07T09:00:00+01:00"
        )
    if schedule_at < now - SCHEDULE_GRACE:
        raise invalid(
            "schedule_in_past", "schedule_at is in the past", f"it is {now.isoformat()} now"
        )


@dataclass(frozen=True, slots=True)
class Draft:
    """A CreateCampaign after the handler checked what needs other streams."""

    name: str
    audience: Audience
    message: MessageContent
    schedule_at: datetime | None
    pacing: Pacing
    retry: RetryPolicy
    send_window: SendWindow | None
    media_known: bool = True
    unknown_devices: Sequence[str] = ()


def create(c: Campaign, draft: Draft, now: datetime) -> list[Event]:
    if c.exists:
        raise Refused("campaign_exists", "The campaign exists already", 409, c.campaign_id)
    name = draft.name.strip()
    if not name or len(name) > MAX_NAME:
        raise invalid("invalid_name", "A campaign needs a name", f"1-{MAX_NAME} characters")
    if draft.schedule_at is not None:
        check_schedule(draft.schedule_at, now)
    if not draft.media_known:
        raise invalid("unknown_media", "The message's media is unknown", draft.message.media_id)
    if draft.unknown_devices:
        raise invalid(
            "unknown_device",
            "The audience names devices the tenant does not have",
            ", ".join(draft.unknown_devices),
        )
    return [
        CampaignCreated(
            tenant_id=c.tenant_id,
            occurred_at=now,
            campaign_id=c.campaign_id,
            name=name,
            audience=draft.audience,
            message=draft.message,
            schedule_at=draft.schedule_at,
            pacing=draft.pacing,
            retry=draft.retry,
            send_window=draft.send_window,
        )
    ]


def schedule(c: Campaign, schedule_at: datetime, now: datetime) -> list[Event]:
    _require(c)
    if c.status != "pending":
        raise _state("campaign_not_pending", "Only a pending campaign can be scheduled", c)
    check_schedule(schedule_at, now)
    return [CampaignScheduled(**_base(c, now), schedule_at=schedule_at)]


@dataclass(frozen=True, slots=True)
class TriggerFacts:
    """What the trigger decision needs from outside the campaign, read after the lead and
    device projections reached the streams' ends."""

    leads_seq: int
    audience_size: int
    connected_device: bool
    running: int
    limit: int
    media_ok: bool = True


def trigger(
    c: Campaign,
    now: datetime,
    trigger_id: str,
    source: Literal["api", "schedule"],
    facts: TriggerFacts,
) -> list[Event]:
    """Triggered, failed at once, or (at the tenant's limit) waiting as pending.

    A trigger repeated with the first one's id decides nothing new: it is the same trigger.
    """
    _require(c)
    if c.status != "pending":
        if trigger_id and trigger_id == c.trigger_id:
            return []
        raise Refused(
            "already_triggered", "A campaign triggers only once", 409, f"campaign is {c.status}"
        )
    base = _base(c, now)
    if facts.running >= facts.limit:
        waiting = c.queued and c.schedule_at is not None and c.schedule_at <= now
        if source == "schedule" or waiting:
            return []
        return [CampaignScheduled(**base, schedule_at=now, queued=True)]
    if not facts.media_ok:
        return [CampaignFailed(**base, reason="media_missing")]
    if not facts.connected_device:
        return [CampaignFailed(**base, reason="no_connected_device")]
    if facts.audience_size == 0:
        return [CampaignFailed(**base, reason="empty_audience")]
    return [
        CampaignTriggered(
            **base,
            trigger_id=trigger_id,
            source=source,
            audience_size=facts.audience_size,
            leads_seq=facts.leads_seq,
        )
    ]


def pause(c: Campaign, now: datetime, reason: str) -> list[Event]:
    _require(c)
    if c.status == "paused":
        raise Refused("already_paused", "The campaign is paused already", 409)
    if c.status != "triggered":
        raise _state("campaign_not_running", "Only a running campaign can be paused", c)
    return [CampaignPaused(**_base(c, now), reason=reason)]


def resume(c: Campaign, now: datetime) -> list[Event]:
    _require(c)
    if c.status != "paused":
        raise _state("campaign_not_paused", "Only a paused campaign can be resumed", c)
    return [CampaignResumed(**_base(c, now))]


def cancel(c: Campaign, now: datetime, reason: str) -> list[Event]:
    _require(c)
    if c.status == "cancelled":
        raise Refused("already_cancelled", "The campaign is cancelled already", 409)
    if c.status not in ("pending", *RUNNING):
        raise _state("campaign_ended", "The campaign has ended; nothing to cancel", c)
    return [CampaignCancelled(**_base(c, now), reason=reason)]


def fail(c: Campaign, now: datetime, reason: str, detail: str = "") -> list[Event]:
    if c.status not in ("pending", *RUNNING):
        return []
    return [CampaignFailed(**_base(c, now), reason=reason, detail=detail)]


def complete(c: Campaign, now: datetime, requested: int, skipped: int) -> list[Event]:
    """Every requested message has its final outcome (the caller counted them)."""
    if c.status != "triggered":
        return []
    return [CampaignCompleted(**_base(c, now), requested=requested, skipped=skipped)]


def finish(c: Campaign, now: datetime, window: timedelta, counts: MessageCounts) -> list[Event]:
    if c.status != "completed" or c.completed_at is None or now < c.completed_at + window:
        return []
    return [CampaignFinished(**_base(c, now), counts=counts)]
