"""Queries: the read side, answered by request/reply on `Topology.query(name)`.

Every request names its tenant (a query never crosses tenants) and may carry `after_seq`:
the stream sequence a command reply returned. The answering service waits (bounded, about
2 s) until its read model has applied that sequence of `after_stream` (a stream key such as
`LEADS`; empty means the stream the query reads first) so that a client reads its own writes.

A query is answered with its response struct, or with a `Reply` holding a `Problem` (404 for
an id the tenant does not have, whether or not another tenant has it). Every response struct
has a required field, so a problem reply never decodes as a response.

Lists are cursor-paged: `cursor` is opaque (the `next_cursor` of the previous page) and
`next_cursor` is None on the last page. Live updates (`Live*`) are the ephemeral JSON
messages on core NATS `Topology.live(tenant)`, forwarded to WebSocket clients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from wacast.contracts.devices import DEVICE_QR_QUERY, DeviceQr
from wacast.contracts.streams import BY_KEY
from wacast.contracts.values import (
    Audience,
    LeadStatus,
    MediaKind,
    MessageContent,
    Origin,
    Pacing,
    RowError,
    SendWindow,
    Step,
    Trigger,
)

# -- names ---------------------------------------------------------------------------

DEVICES = "reports.devices"
DEVICE = "reports.device"
DEVICE_IMPACT = "reports.device_impact"
LEADS = "reports.leads"
LEAD = "reports.lead"
LEAD_IMPORT = "reports.lead_import"
LEAD_CONVERSATION = "reports.lead_conversation"
MEDIA_LIST = "reports.media_list"
MEDIA = "reports.media"
CAMPAIGNS = "reports.campaigns"
CAMPAIGN = "reports.campaign"
CAMPAIGN_REPORT = "reports.campaign_report"
CAMPAIGN_MESSAGES = "reports.campaign_messages"
SEQUENCES = "reports.sequences"
SEQUENCE = "reports.sequence"
ENROLLMENTS = "reports.enrollments"
OVERVIEW = "reports.overview"
REPORT_QUERIES = (
    DEVICES,
    DEVICE,
    DEVICE_IMPACT,
    LEADS,
    LEAD,
    LEAD_IMPORT,
    LEAD_CONVERSATION,
    MEDIA_LIST,
    MEDIA,
    CAMPAIGNS,
    CAMPAIGN,
    CAMPAIGN_REPORT,
    CAMPAIGN_MESSAGES,
    SEQUENCES,
    SEQUENCE,
    ENROLLMENTS,
    OVERVIEW,
)
"""Answered by the report-service (queue group `reports`)."""

API_KEYS = "tenants.keys"
"""Answered by the api-gateway from its key index: a tenant's API keys."""
DEVICE_QR = DEVICE_QR_QUERY
"""Answered by the device-gateway: a device's linking prompt (`devices.DeviceQr`)."""

MAX_LIMIT = 500

# -- statuses --------------------------------------------------------------------------

DeviceStatus = Literal["unpaired", "pairing", "connected", "disconnected", "logged_out", "banned"]
CampaignStatus = Literal[
    "pending", "triggered", "paused", "completed", "finished", "failed", "cancelled"
]
"""`completed`: every message has a final send outcome; `finished`: the receipt window after
that has closed too, and the report is final."""
MessageStatus = Literal["pending", "queued", "sent", "delivered", "read", "failed"]
MessageFilter = Literal["pending", "success", "failed", "queued", "sent", "delivered", "read"]
"""`pending`: not sent yet (pending or queued); `success`: sent, delivered or read;
`failed`: failed or cancelled; the others are precise statuses."""
SequenceStatus = Literal["draft", "active", "paused", "archived"]
EnrollmentStatus = Literal["active", "paused", "completed", "failed", "removed"]
ImportStatus = Literal["running", "completed", "failed"]
ConversationStatus = Literal["pending", "queued", "sent", "delivered", "read", "failed", "received"]
"""An outbound message's status, or `received` for what the lead wrote."""

# -- requests --------------------------------------------------------------------------


class Query(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    after_seq: int = 0
    after_stream: str = ""

    def __post_init__(self) -> None:
        if self.after_seq < 0:
            raise ValueError("after_seq must be >= 0")
        if self.after_stream and self.after_stream not in BY_KEY:
            raise ValueError(f"after_stream must be one of {', '.join(BY_KEY)}")


class Paged(Query, frozen=True, kw_only=True):
    cursor: str = ""
    limit: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1-{MAX_LIMIT}")


class GetOne(Query, frozen=True, kw_only=True):
    """One object of the tenant by id (device, lead, media, campaign, sequence, import)."""

    id: str


class ListDevices(Paged, frozen=True, kw_only=True):
    status: DeviceStatus | None = None


class ListLeads(Paged, frozen=True, kw_only=True):
    """`search` matches name (case-insensitive, contains) or phone (prefix)."""

    status: LeadStatus | None = None
    tag: str = ""
    device_id: str = ""
    search: str = ""
    opted_out: bool | None = None


class GetLeadConversation(Query, frozen=True, kw_only=True):
    """A lead's conversation, newest page first: each page is in the order things were
    recorded (oldest first), and `cursor` (a page's `next_cursor`) reaches further back."""

    lead_id: str
    cursor: str = ""
    limit: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1-{MAX_LIMIT}")


class GetLeadImport(Query, frozen=True, kw_only=True):
    id: str
    errors_cursor: str = ""
    errors_limit: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.errors_limit <= MAX_LIMIT:
            raise ValueError(f"errors_limit must be 1-{MAX_LIMIT}")


class ListMedia(Paged, frozen=True, kw_only=True):
    kind: MediaKind | None = None


class ListCampaigns(Paged, frozen=True, kw_only=True):
    status: CampaignStatus | None = None


class ListCampaignMessages(Paged, frozen=True, kw_only=True):
    campaign_id: str
    status: MessageFilter | None = None
    device_id: str = ""


class ListSequences(Paged, frozen=True, kw_only=True):
    status: SequenceStatus | None = None


class ListEnrollments(Paged, frozen=True, kw_only=True):
    sequence_id: str
    status: EnrollmentStatus | None = None


# -- responses -------------------------------------------------------------------------


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """`sends_today` counts messages sent since midnight in the tenant's timezone."""

    id: str
    name: str
    driver: Literal["sim", "whatsapp"]
    status: DeviceStatus
    phone: str = ""
    push_name: str = ""
    last_seen_at: datetime | None = None
    banned_until: datetime | None = None
    ban_reason: str = ""
    pairing_method: Literal["qr", "code"] | None = None
    daily_cap: int | None = None
    warmup: bool = False
    leads: int = 0
    sends_today: int = 0
    created_at: datetime
    updated_at: datetime


class DevicePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Device]
    next_cursor: str | None = None


class DeletionImpact(msgspec.Struct, frozen=True, kw_only=True):
    """What deleting the device removes: its leads and the messages sent through it."""

    device_id: str
    leads: int
    messages: int


class Lead(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    phone: str
    name: str = ""
    device_id: str = ""
    device_name: str = ""
    status: LeadStatus = "prospect"
    tags: list[str] = msgspec.field(default_factory=list)
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    opted_out: bool = False
    opted_out_at: datetime | None = None
    import_id: str = ""
    created_at: datetime
    updated_at: datetime


class LeadPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Lead]
    next_cursor: str | None = None


class MessageRow(msgspec.Struct, frozen=True, kw_only=True):
    """One message with the lead and device it belongs to (joined when asked)."""

    id: str
    origin: Origin
    campaign_id: str = ""
    sequence_id: str = ""
    enrollment_id: str = ""
    step_id: str = ""
    lead_id: str
    lead_name: str = ""
    lead_phone: str = ""
    device_id: str
    device_name: str = ""
    status: MessageStatus
    reason: str = ""
    attempt: int = 1
    text: str = ""
    media_id: str = ""
    requested_at: datetime
    queued_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    replied_at: datetime | None = None
    updated_at: datetime


class MessagePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[MessageRow]
    next_cursor: str | None = None


class Enrollment(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    sequence_id: str
    sequence_name: str = ""
    lead_id: str
    lead_name: str = ""
    device_id: str = ""
    status: EnrollmentStatus
    reason: str = ""
    source: Literal["api", "trigger"] = "api"
    steps_sent: int = 0
    last_step_id: str = ""
    next_step_id: str = ""
    next_due_at: datetime | None = None
    started_at: datetime
    updated_at: datetime


class EnrollmentPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Enrollment]
    next_cursor: str | None = None


class LeadDetail(Lead, frozen=True, kw_only=True):
    """The lead with every campaign and sequence message it got and its enrollments."""

    messages: list[MessageRow] = msgspec.field(default_factory=list)
    enrollments: list[Enrollment] = msgspec.field(default_factory=list)


class ConversationEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a conversation.

    `outbound`: a campaign or sequence message to the lead (`id` is the message id; `at` is
    when it was sent, or requested while it was not); `inbound`: what the lead wrote (`id` is
    the inbound id, `at` when it arrived, `in_reply_to` the message it answers, if known).
    `media_type` is the attachment's kind ("" for text only)."""

    id: str
    direction: Literal["outbound", "inbound"]
    at: datetime
    text: str = ""
    media_type: str = ""
    media_id: str = ""
    status: ConversationStatus
    reason: str = ""
    device_id: str
    origin: Origin | None = None
    campaign_id: str = ""
    sequence_id: str = ""
    enrollment_id: str = ""
    in_reply_to: str = ""


class ConversationPage(msgspec.Struct, frozen=True, kw_only=True):
    """`items` oldest first, in the order they were recorded in the MESSAGES stream (an
    outbound message where it was sent, or requested while unsent); `next_cursor` pages to
    older messages (None: none older)."""

    lead_id: str
    items: list[ConversationEntry]
    next_cursor: str | None = None


class LeadImport(msgspec.Struct, frozen=True, kw_only=True):
    """Progress of a CSV import; `errors` is one page of row errors (`errors_next_cursor`)."""

    id: str
    filename: str
    status: ImportStatus
    total_rows: int | None = None
    rows_done: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    reason: str = ""
    detail: str = ""
    errors: list[RowError] = msgspec.field(default_factory=list)
    errors_next_cursor: str | None = None
    started_at: datetime
    finished_at: datetime | None = None


class Media(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: MediaKind
    mime: str
    bytes: int
    filename: str = ""
    sha256: str = ""
    width: int | None = None
    height: int | None = None
    source: Literal["upload", "url"] = "upload"
    source_url: str = ""
    original_bytes: int = 0
    created_at: datetime


class MediaPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Media]
    next_cursor: str | None = None


class CampaignCounts(msgspec.Struct, frozen=True, kw_only=True):
    """`success` = sent + delivered + read; `failed` includes cancelled messages, split by
    reason in `failed_by_reason`."""

    total: int = 0
    pending: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    success: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = msgspec.field(default_factory=dict)


class Campaign(msgspec.Struct, frozen=True, kw_only=True):
    """`percent` is the share of messages with a final outcome; `eta` extrapolates the pace
    of outcomes so far (None before the first outcome or once nothing waits)."""

    id: str
    name: str
    status: CampaignStatus
    failure_reason: str = ""
    audience: Audience
    message: MessageContent
    pacing: Pacing
    send_window: SendWindow | None = None
    schedule_at: datetime | None = None
    counts: CampaignCounts
    percent: float = 0.0
    eta: datetime | None = None
    created_at: datetime
    triggered_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    finished_at: datetime | None = None
    cancelled_at: datetime | None = None
    failed_at: datetime | None = None
    updated_at: datetime


class CampaignPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Campaign]
    next_cursor: str | None = None


class ReportTotals(msgspec.Struct, frozen=True, kw_only=True):
    """`pending` = pending + queued; `success` = sent + delivered + read."""

    total: int = 0
    pending: int = 0
    success: int = 0
    failed: int = 0


class DeviceReport(ReportTotals, frozen=True, kw_only=True):
    device_id: str
    device_name: str = ""


class CampaignReport(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    devices: list[DeviceReport]
    totals: ReportTotals


class SequenceProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Enrollments by status, messages sent, and `percent` of enrollments that ended."""

    enrolled: int = 0
    active: int = 0
    paused: int = 0
    completed: int = 0
    failed: int = 0
    removed: int = 0
    sent: int = 0
    percent: float = 0.0


class Sequence(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    status: SequenceStatus
    steps: list[Step]
    pacing: Pacing
    triggers: list[Trigger] = msgspec.field(default_factory=list)
    on_failure: Literal["stop", "continue"] = "stop"
    stop_on_reply: Literal["end", "pause", "ignore"] = "end"
    progress: SequenceProgress
    created_at: datetime
    updated_at: datetime


class SequencePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Sequence]
    next_cursor: str | None = None


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """The tenant at a glance: counts by status and today's sends."""

    tenant_id: str
    name: str = ""
    timezone: str = "UTC"
    devices: dict[str, int] = msgspec.field(default_factory=dict)
    leads: int = 0
    opted_out: int = 0
    campaigns: dict[str, int] = msgspec.field(default_factory=dict)
    sequences: dict[str, int] = msgspec.field(default_factory=dict)
    active_enrollments: int = 0
    sends_today: int = 0
    messages: dict[str, int] = msgspec.field(default_factory=dict)


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ApiKey]
    next_cursor: str | None = None


# -- live updates (core NATS `Topology.live(tenant)`, ephemeral) ------------------------


class Live(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """One live update; `type` tells which. Never stored: a missed one is simply missed."""

    at: datetime


class LiveDevice(Live, frozen=True, kw_only=True, tag="device"):
    """A device event happened; `status` is the device's status after it (None when the
    event does not change it, e.g. a rename), `deleted` when the device is gone."""

    device_id: str
    event: str
    status: DeviceStatus | None = None
    name: str = ""
    phone: str = ""
    deleted: bool = False


class LiveCampaign(Live, frozen=True, kw_only=True, tag="campaign"):
    """A campaign event happened (created, triggered, paused, ..., finished)."""

    campaign_id: str
    event: str
    status: CampaignStatus | None = None


class LiveCampaignProgress(Live, frozen=True, kw_only=True, tag="campaign.progress"):
    """Published by the report-service at most about once a second per campaign."""

    campaign_id: str
    counts: CampaignCounts
    percent: float = 0.0


class LiveSequenceProgress(Live, frozen=True, kw_only=True, tag="sequence.progress"):
    sequence_id: str
    progress: SequenceProgress


class LiveLead(Live, frozen=True, kw_only=True, tag="lead"):
    """A lead changed (opted out, status, ...) or wrote a message: read it again. A hint
    published by the report-service at most about once a second per lead, ids only."""

    lead_id: str


class LiveHeartbeat(Live, frozen=True, kw_only=True, tag="heartbeat"):
    """Sent to each WebSocket client when nothing else was, so idle sockets stay open."""


LiveUpdate = (
    DeviceQr | LiveDevice | LiveCampaign | LiveCampaignProgress | LiveSequenceProgress | LiveLead
)
"""What travels on the live subject: linking prompts (`devices.DeviceQr`, from the
device-gateway) and the updates above. Heartbeats are made per WebSocket, not published."""
