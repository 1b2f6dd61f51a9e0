"""The WEBHOOKS stream: tenants' webhook endpoints and the log of deliveries to them.

Subjects, and who appends to them (the webhook-service, owner `webhooks`):

- `webhook.<tenant>.<webhook>`: `WebhookCreated` (url, event types, signing secret), then
  `WebhookDeleted`.
- `whdelivery.<tenant>.<delivery>`: one source event for one endpoint. `WebhookDeliveryQueued`
  (appended once, expected sequence 0: the delivery id is `delivery_id(webhook, stream, seq)`),
  then `WebhookDeliveryAttempted` per failed try, and `WebhookDelivered` or
  `WebhookDeliveryDead`; `WebhookReplayRequested` makes it pending again.

Delivery events name their source event by stream key, stream sequence and public type and
never copy its body: bodies can carry personal data that erasure purges, and a delivery
re-reads its source event when it sends.

The public event types (`EVENT_TYPES`) are what endpoints subscribe to; a subscription of
`["*"]` takes all of them. Payloads are `{id, type, timestamp, tenant_id, data}` where `id` is
`event_id(stream, seq)` (the same for every endpoint and every retry: the `webhook-id`
header of the Standard Webhooks signature) and `data` the source event's fields.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import msgspec

from wacast.contracts import campaigns as c
from wacast.contracts import devices as d
from wacast.contracts import messages as m
from wacast.contracts import sequences as s
from wacast.contracts.base import Command, Event
from wacast.contracts.subjects import Topology, check_token

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 200
ALL_TYPES = "*"

# -- the public event types ----------------------------------------------------------------

EVENT_TYPES: dict[type[Event], str] = {
    m.MessageSent: "message.sent",
    m.MessageDelivered: "message.delivered",
    m.MessageRead: "message.read",
    m.MessageFailed: "message.failed",
    m.MessageCancelled: "message.failed",
    m.InboundMessageReceived: "message.inbound",
    d.DeviceConnected: "device.connected",
    d.DeviceDisconnected: "device.disconnected",
    d.DeviceLoggedOut: "device.logged_out",
    d.DeviceBanned: "device.banned",
    c.CampaignTriggered: "campaign.started",
    c.CampaignPaused: "campaign.paused",
    c.CampaignResumed: "campaign.resumed",
    c.CampaignCompleted: "campaign.completed",
    c.CampaignFinished: "campaign.finished",
    c.CampaignFailed: "campaign.failed",
    c.CampaignCancelled: "campaign.cancelled",
    s.SequenceActivated: "sequence.activated",
    s.SequencePaused: "sequence.paused",
    s.SequenceArchived: "sequence.archived",
    s.EnrollmentStarted: "enrollment.started",
    s.EnrollmentStepSent: "enrollment.step_sent",
    s.EnrollmentStepFailed: "enrollment.step_failed",
    s.EnrollmentPaused: "enrollment.paused",
    s.EnrollmentResumed: "enrollment.resumed",
    s.EnrollmentCompleted: "enrollment.completed",
    s.EnrollmentFailed: "enrollment.failed",
    s.EnrollmentRemoved: "enrollment.removed",
}
"""Source event class -> public type. `message.failed` covers a message that failed after
hand-off (`MessageFailed`) and one that left its lane unsent (`MessageCancelled`)."""

CATALOG: tuple[str, ...] = tuple(sorted(set(EVENT_TYPES.values())))
"""Every public event type, sorted."""

SOURCES: tuple[tuple[str, str], ...] = (
    ("MESSAGES", "msg"),
    ("MESSAGES", "lane"),
    ("MESSAGES", "inbound"),
    ("DEVICES", "device"),
    ("CAMPAIGNS", "campaign"),
    ("SEQUENCES", "sequence"),
    ("SEQUENCES", "enrollment"),
)
"""(stream key, subject kind) of every subject that holds a source event."""

_HIDDEN = frozenset({"type", "tenant_id", "occurred_at", "v"})


def public_type(event: Event) -> str | None:
    """The public type of a source event; None for events endpoints never see."""
    return EVENT_TYPES.get(type(event))


def resource_of(event: Event) -> str:
    """What a delivery is ordered by: the message, device, campaign, sequence, enrollment or
    conversation the event is about. Deliveries of one resource to one endpoint go in
    stream order, each after the previous one ended."""
    if isinstance(event, m.InboundMessageReceived):
        return f"inbound:{event.lead_id or event.contact_key}"
    for field in ("enrollment_id", "message_id", "campaign_id", "sequence_id", "device_id"):
        value = getattr(event, field, None)
        if isinstance(value, str) and value:
            return f"{field.removesuffix('_id')}:{value}"
    raise TypeError(f"{type(event).__name__} is not a webhook source event")


def payload_data(event: Event) -> dict[str, Any]:
    """The `data` of a webhook payload: the event's own fields (ids, status, reason; the
    text and sender of an inbound message)."""
    built = msgspec.to_builtins(event)
    assert isinstance(built, dict)
    return {key: value for key, value in built.items() if key not in _HIDDEN}


def check_event_types(types: list[str]) -> list[str]:
    """Known public types without repeats, or `["*"]`; anything else is a ValueError."""
    if not types:
        raise ValueError("subscribe to at least one event type (or '*' for all)")
    if ALL_TYPES in types:
        if len(set(types)) > 1:
            raise ValueError("'*' takes every event type: give it alone")
        return [ALL_TYPES]
    unknown = sorted({t for t in types if t not in CATALOG})
    if unknown:
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(CATALOG)}")
    return list(dict.fromkeys(types))


def subscribed(event_types: list[str], public: str) -> bool:
    return ALL_TYPES in event_types or public in event_types


def check_url(url: str) -> str:
    """The shape of an endpoint URL (where it points is checked by the owner's SSRF guard)."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("the url must be http or https")
    if not parts.hostname:
        raise ValueError("the url has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the url must not carry credentials")
    if port == 0:
        raise ValueError("the url's port must be 1-65535")
    return url


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def event_id(stream_key: str, seq: int) -> str:
    """The id of a source event in payloads and `webhook-id` headers: one per event, the
    same for every endpoint, retry and replay, so receivers deduplicate by it."""
    return "evt_" + _digest("event", stream_key, str(seq))


def delivery_id(webhook_id: str, stream_key: str, seq: int) -> str:
    """One source event to one endpoint: queued once however often it is taken in."""
    return "dlv_" + _digest("delivery", webhook_id, stream_key, str(seq))


# -- events --------------------------------------------------------------------------------


class WebhookEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "webhook"

    webhook_id: str

    def subject(self, topology: Topology) -> str:
        return topology.webhook(self.tenant_id, self.webhook_id)


class WebhookCreated(WebhookEventBase, frozen=True, kw_only=True):
    """An endpoint for `event_types` (public types, or `["*"]`). `secret` (`whsec_<base64>`)
    signs every delivery; the API shows it once, in the answer to the creation."""

    url: str
    event_types: list[str]
    secret: str
    description: str = ""


class WebhookDeleted(WebhookEventBase, frozen=True, kw_only=True):
    """Nothing more is delivered to it; what was pending is cancelled."""


class DeliveryEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "whdelivery"

    delivery_id: str
    webhook_id: str
    source_stream: str
    """Stream key of the source event (e.g. `MESSAGES`)."""
    source_seq: int
    event_type: str
    """Its public type (e.g. `message.sent`)."""

    def subject(self, topology: Topology) -> str:
        return topology.webhook_delivery(self.tenant_id, self.delivery_id)


class WebhookDeliveryQueued(DeliveryEventBase, frozen=True, kw_only=True):
    """The source event is for this endpoint; `resource` orders it (see `resource_of`)."""

    resource: str


class WebhookDeliveryAttempted(DeliveryEventBase, frozen=True, kw_only=True):
    """Try number `attempt` failed (`status_code` 0: no HTTP answer, see `error`); the next
    one is due at `retry_at`."""

    attempt: int
    status_code: int = 0
    error: str = ""
    duration_ms: int = 0
    retry_at: datetime


class WebhookDelivered(DeliveryEventBase, frozen=True, kw_only=True):
    """The endpoint answered 2xx on try number `attempt`."""

    attempt: int
    status_code: int
    duration_ms: int = 0


class WebhookDeliveryDead(DeliveryEventBase, frozen=True, kw_only=True):
    """Given up after `attempts` tries (or at once when the source event is gone, e.g.
    erased): logged and visible, and a replay sends it again."""

    attempts: int
    status_code: int = 0
    error: str = ""


class WebhookReplayRequested(DeliveryEventBase, frozen=True, kw_only=True):
    """Send it again, from its first try (manual replay of a dead or delivered one)."""


WebhookEvent = (
    WebhookCreated
    | WebhookDeleted
    | WebhookDeliveryQueued
    | WebhookDeliveryAttempted
    | WebhookDelivered
    | WebhookDeliveryDead
    | WebhookReplayRequested
)

# -- commands (owner `webhooks`) ---------------------------------------------------------


class CreateWebhook(Command, frozen=True, kw_only=True):
    """The owner checks where the URL points (SSRF guard) and the tenant's endpoint limit,
    and answers `data` {secret}."""

    url: str
    event_types: list[str]
    description: str = ""
    webhook_id: str = ""

    def __post_init__(self) -> None:
        check_url(self.url)
        msgspec.structs.force_setattr(self, "event_types", check_event_types(self.event_types))
        if len(self.description) > MAX_DESCRIPTION_LENGTH:
            raise ValueError(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")


class DeleteWebhook(Command, frozen=True, kw_only=True):
    webhook_id: str


class ReplayWebhookDelivery(Command, frozen=True, kw_only=True):
    """Send a dead or delivered delivery again (refused while it is pending)."""

    webhook_id: str
    delivery_id: str


# -- queries (answered by the webhook-service) ---------------------------------------------

LIST_QUERY = "webhooks.list"
GET_QUERY = "webhooks.get"
DELIVERIES_QUERY = "webhooks.deliveries"
MAX_LIMIT = 500

DeliveryStatus = Literal["pending", "delivered", "dead", "cancelled"]
"""`pending`: waiting for its (next) try; `cancelled`: its webhook was deleted first."""


class WebhookQuery(msgspec.Struct, frozen=True, kw_only=True):
    """`after_seq`: a WEBHOOKS sequence a command answered; the reply waits until the
    owner's tables hold it (read your writes)."""

    tenant_id: str
    after_seq: int = 0
    cursor: str = ""
    limit: int = 50

    def __post_init__(self) -> None:
        if self.after_seq < 0:
            raise ValueError("after_seq must be >= 0")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1-{MAX_LIMIT}")
        if self.cursor:
            check_token(self.cursor, "cursor")


class ListWebhooks(WebhookQuery, frozen=True, kw_only=True):
    pass


class GetWebhook(WebhookQuery, frozen=True, kw_only=True):
    webhook_id: str

    def __post_init__(self) -> None:
        super().__post_init__()
        check_token(self.webhook_id, "webhook id")


class ListDeliveries(WebhookQuery, frozen=True, kw_only=True):
    """Newest first."""

    webhook_id: str
    status: DeliveryStatus | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_token(self.webhook_id, "webhook id")


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    url: str
    event_types: list[str]
    description: str
    created_at: datetime


class WebhookPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Webhook]
    next_cursor: str | None = None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    source_stream: str
    source_seq: int
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: datetime | None
    queued_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None
    replays: int = 0


class DeliveryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Delivery]
    next_cursor: str | None = None
