"""Campaign events, owned by the campaign service. Subject `campaign.<tenant>.<id>`.

Life: created (pending, or scheduled with `schedule_at`) -> triggered once -> completed
(every requested message has a final send outcome: sent, failed or cancelled) -> finished
(the receipt window after completion has closed; the counts are final). Paused and resumed
in between; cancelled or failed end it early and fail what is still waiting.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.subjects import Topology
from wacast.contracts.values import (
    Audience,
    MessageContent,
    MessageCounts,
    Pacing,
    RetryPolicy,
    SendWindow,
)


class CampaignEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "campaign"

    campaign_id: str

    def subject(self, topology: Topology) -> str:
        return topology.campaign(self.tenant_id, self.campaign_id)


class CampaignCreated(CampaignEventBase, frozen=True, kw_only=True):
    """`message.text` is a template (`{name}`, `{phone}`, `{attributes.x}`), rendered
    per lead into each send request."""

    name: str
    audience: Audience
    message: MessageContent
    schedule_at: datetime | None = None
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    send_window: SendWindow | None = None


class CampaignScheduled(CampaignEventBase, frozen=True, kw_only=True):
    """It triggers by itself at `schedule_at` (set, or moved, after creation).

    `queued`: a trigger found the tenant's running campaigns at their limit, so the campaign
    waits as pending (due now) and triggers by itself when a slot frees.
    """

    schedule_at: datetime
    queued: bool = False


class CampaignTriggered(CampaignEventBase, frozen=True, kw_only=True):
    """Sending starts; happens at most once per campaign.

    `trigger_id` is the decision's id (the idempotency key of the command, or the
    schedule's); `audience_size` is 0 when not yet counted. `leads_seq` is the LEADS
    stream's last sequence when it triggered: the audience is frozen there (leads created
    later are not in it) and the fan-out waits until the lead projection has reached it.
    """

    trigger_id: str
    source: Literal["api", "schedule"] = "api"
    audience_size: int = 0
    leads_seq: int = 0


class CampaignPaused(CampaignEventBase, frozen=True, kw_only=True):
    """Fan-out stops and waiting messages are held back until resumed."""

    reason: str = ""


class CampaignResumed(CampaignEventBase, frozen=True, kw_only=True):
    """Fan-out and held messages go on where they stopped."""


class CampaignCancelled(CampaignEventBase, frozen=True, kw_only=True):
    """Stopped for good by a user: messages still waiting are cancelled."""

    reason: str = ""


class CampaignCompleted(CampaignEventBase, frozen=True, kw_only=True):
    """Every send request has been emitted and every requested message has a final send
    outcome (sent, failed or cancelled); delivery and read receipts may still come.

    `skipped` counts audience leads that got no request (opted out, no device).
    """

    requested: int
    skipped: int = 0


class CampaignFinished(CampaignEventBase, frozen=True, kw_only=True):
    """The receipt window after completion has closed: nothing waits any more and
    `counts` are the campaign's final figures."""

    counts: MessageCounts


class CampaignFailed(CampaignEventBase, frozen=True, kw_only=True):
    """The campaign cannot run; waiting messages fail.

    `reason`: `no_connected_device` (none online at trigger), `empty_audience`,
    `media_missing` or `fanout_error`.
    """

    reason: str
    detail: str = ""


CampaignEvent = (
    CampaignCreated
    | CampaignScheduled
    | CampaignTriggered
    | CampaignPaused
    | CampaignResumed
    | CampaignCancelled
    | CampaignCompleted
    | CampaignFinished
    | CampaignFailed
)
