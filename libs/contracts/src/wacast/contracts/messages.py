"""The MESSAGES stream: send requests, device lanes, outcomes, send controls, fan-out.

Subjects, and who appends to them:

- `sendreq.<partition>.<tenant>.<device>.<message>`: `MessageRequested`, by the campaign
  or sequence service, once per message with expected sequence 0: a message id is
  deterministic (see `ids`), so it can never be requested twice.
- `lane.<partition>.<tenant>.<device>`: the device's send lane, by the gateway replica
  that holds the partition, each append with the lane's expected last sequence (a stale
  owner is fenced out). Its events rebuild the lane: what waits, what is in flight, when
  the last send left. Ids and scheduling only, no personal data.
- `lanecp.<partition>.<tenant>.<device>`: `LaneCheckpointed`, so a replica that takes a
  lane over replays it from the oldest open entry, not from the lane's first event.
- `msg.<tenant>.<message>`: outcomes of one message, by the gateway.
- `sendctl.<tenant>.<scope>.<id>`: the owners hold, release or withdraw what waits in
  lanes for a campaign, an enrollment or a lead; the gateway needs no other stream.
- `fanout.<tenant>.<campaign>`: the campaign's fan-out cursor, appended in the same atomic
  batch as the send requests it covers.
- `inbound.<tenant>.<lead or contact>`: what people wrote to the tenant's devices, by the
  gateway, one subject per lead (or per unknown contact, keyed by `ids.phone_key`), so
  that erasing a lead purges its conversation with one subject purge.

Personal data: a send request carries the recipient's phone (`to`) and the rendered text,
a reply and an inbound message carry their text (and an inbound message its sender's
phone). Erasing a lead purges its `sendreq`, `msg` and `inbound` subjects along with its
lead subject.

Status of a message: pending (`MessageAccepted`, or `MessageRetryScheduled`) -> queued
(`MessageDispatching`, appended before the driver is called) -> sent -> delivered -> read;
or failed: `MessageFailed` after hand-off, `MessageCancelled` before it.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.subjects import Topology
from wacast.contracts.values import (
    MediaRef,
    MessageContent,
    Origin,
    Pacing,
    RetryPolicy,
    SendWindow,
)

# -- send requests ---------------------------------------------------------------------


class MessageRequested(Event, frozen=True, kw_only=True):
    """Send `content` to `to` through `device_id`.

    `origin_id` is the campaign id (campaign origin) or the enrollment id (sequence
    origin, with `sequence_id` and `step_id`). `content.text` is rendered already; `media`
    says where the gateway finds the bytes. Nothing is sent before `not_before`, outside
    `window` (its timezone resolved), or after `not_after` (then it is cancelled).
    """

    subject_kind: ClassVar[str] = "sendreq"

    message_id: str
    device_id: str
    lead_id: str
    origin: Origin
    origin_id: str
    sequence_id: str = ""
    step_id: str = ""
    to: str
    content: MessageContent
    media: MediaRef | None = None
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    window: SendWindow | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None

    def subject(self, topology: Topology) -> str:
        return topology.send_request(self.tenant_id, self.device_id, self.message_id)


# -- device lanes ----------------------------------------------------------------------


class LaneEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "lane"

    device_id: str

    def subject(self, topology: Topology) -> str:
        return topology.lane(self.tenant_id, self.device_id)


class LaneFenced(LaneEventBase, frozen=True, kw_only=True):
    """Replica `owner` took the lane with lease `epoch`: earlier owners' appends, based on
    an older last sequence, are refused from here on."""

    owner: str
    epoch: int


class MessageAccepted(LaneEventBase, frozen=True, kw_only=True):
    """The request waits in the lane (status pending); its JetStream message is acked.

    Carries what scheduling needs so a lane rebuilds without reading every request;
    `request_seq` is where the request sits in the stream, fetched again at dispatch.
    """

    message_id: str
    lead_id: str
    origin: Origin
    origin_id: str
    request_seq: int
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    window: SendWindow | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None


class MessageDispatching(LaneEventBase, frozen=True, kw_only=True):
    """Handed to the driver (status queued). Its outcome follows on the message subject;
    found without one at takeover, the message fails as `unknown` and is never resent."""

    message_id: str
    attempt: int = 1


class MessageRetryScheduled(LaneEventBase, frozen=True, kw_only=True):
    """A known-not-sent transient failure: back to pending until `not_before`, for
    attempt number `attempt`."""

    message_id: str
    attempt: int
    not_before: datetime
    reason: str
    detail: str = ""


class MessageCancelled(LaneEventBase, frozen=True, kw_only=True):
    """Left the lane without being handed to the driver: shown as failed(reason).

    `reason`: `campaign_cancelled`, `campaign_failed`, `enrollment_removed`, `opted_out`,
    `lead_deleted`, `lead_replied` (withdrawn by their owner), `device_offline` (pending
    longer than the offline timeout), `device_deleted`, `device_unknown` (no such device),
    `lane_full` (the device's lane holds its maximum already), `expired` (past `not_after`),
    `media_missing`, `request_missing` (the send request was purged, e.g. its lead erased).
    """

    message_id: str
    lead_id: str
    origin: Origin
    origin_id: str
    reason: str


class LaneCheckpointed(Event, frozen=True, kw_only=True):
    """The lane as of its sequence `lane_seq`: every entry before `open_from_seq` is
    closed, and `sent_that_day` sends left on local day `day` (for the daily cap)."""

    subject_kind: ClassVar[str] = "lanecp"

    device_id: str
    lane_seq: int
    open_from_seq: int
    last_dispatch_at: datetime | None = None
    day: str = ""
    sent_that_day: int = 0

    def subject(self, topology: Topology) -> str:
        return topology.lane_checkpoint(self.tenant_id, self.device_id)


# -- outcomes --------------------------------------------------------------------------


class MessageOutcomeBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "msg"

    message_id: str
    device_id: str
    lead_id: str
    origin: Origin
    origin_id: str

    def subject(self, topology: Topology) -> str:
        return topology.message(self.tenant_id, self.message_id)


class MessageSent(MessageOutcomeBase, frozen=True, kw_only=True):
    """WhatsApp took the message (server ack); `wa_message_id` links later receipts."""

    wa_message_id: str
    attempt: int = 1


class MessageDelivered(MessageOutcomeBase, frozen=True, kw_only=True):
    """Reached the recipient's phone."""


class MessageRead(MessageOutcomeBase, frozen=True, kw_only=True):
    """The recipient opened it (only when they share read receipts)."""


class MessageFailed(MessageOutcomeBase, frozen=True, kw_only=True):
    """Handed to the driver, and not sent (or not known to be sent). Final.

    `reason` (a plain string so new reasons do not break old readers):
    - `timeout`: queued without an outcome longer than the stuck timeout;
    - `unknown`: a dispatch record without an outcome found at takeover;
    - `not_on_whatsapp`: the number has no WhatsApp account;
    - `banned`: the device was banned while sending;
    - `rejected`: WhatsApp refused this message;
    - `media_missing`: the media bytes are gone;
    - `transient_exhausted`: every attempt of the retry policy failed.
    Messages that never reached the driver end with `MessageCancelled` instead.
    `retryable`: sending it again later could succeed (a manual retry makes sense).
    """

    reason: str
    retryable: bool = False
    detail: str = ""
    attempt: int = 1


class MessageReplied(MessageOutcomeBase, frozen=True, kw_only=True):
    """The lead wrote back; attributed to the latest message the device sent it.

    Drives opt-out keywords and `stop_on_reply` of sequences.
    """

    text: str = ""
    wa_message_id: str = ""


# -- inbound messages -------------------------------------------------------------------


class InboundMessageReceived(Event, frozen=True, kw_only=True):
    """Someone wrote to `device_id`.

    `sender` is their phone in E.164; `contact_key` is `ids.phone_key(tenant, sender)`.
    `lead_id` is the tenant's lead holding that phone ("" for an unknown contact: the
    subject is then keyed by `contact_key`). `in_reply_to` is the latest message the device
    sent this contact ("" when none is known), with its `origin` and `origin_id`.
    `media_type`: "" for plain text, else `image`, `video`, `audio`, `document`, `sticker`
    or `other` (the bytes are not kept). `inbound_id` is `ids.inbound_id(device, wa id)`,
    so a message the network reports twice is recorded once.
    """

    subject_kind: ClassVar[str] = "inbound"

    inbound_id: str
    device_id: str
    lead_id: str = ""
    contact_key: str
    sender: str
    text: str = ""
    media_type: str = ""
    wa_message_id: str = ""
    in_reply_to: str = ""
    origin: Origin | None = None
    origin_id: str = ""

    def subject(self, topology: Topology) -> str:
        return topology.inbound(self.tenant_id, self.lead_id or self.contact_key)


# -- send controls ---------------------------------------------------------------------


class SendControlEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "sendctl"

    scope: Literal["campaign", "enrollment", "lead"]
    scope_id: str

    def subject(self, topology: Topology) -> str:
        return topology.send_control(self.tenant_id, self.scope, self.scope_id)


class SendsHeld(SendControlEventBase, frozen=True, kw_only=True):
    """Waiting messages of the scope stay in their lanes but are skipped (paused)."""

    reason: str = ""


class SendsReleased(SendControlEventBase, frozen=True, kw_only=True):
    """Held messages of the scope may go again."""


class SendsWithdrawn(SendControlEventBase, frozen=True, kw_only=True):
    """Nothing more of the scope is sent: what waits, and what arrives later, is cancelled
    with `reason` (see `MessageCancelled`). Final for a campaign or an enrollment; a lead's
    withdrawal (opt-out, deletion) is lifted by a later `SendsReleased` of the lead (opt-in)
    for requests appended after that release."""

    reason: str


# -- campaign fan-out ------------------------------------------------------------------


class FanoutEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "fanout"

    campaign_id: str

    def subject(self, topology: Topology) -> str:
        return topology.fanout(self.tenant_id, self.campaign_id)


class CampaignFanoutProgressed(FanoutEventBase, frozen=True, kw_only=True):
    """Closes an atomic batch of send requests: leads up to `cursor` (a lead id, in lead
    id order) are done; a restarted fan-out goes on after it."""

    cursor: str
    requested: int
    skipped: int = 0


class CampaignFanoutCompleted(FanoutEventBase, frozen=True, kw_only=True):
    requested: int
    skipped: int = 0


MessageEvent = (
    MessageRequested
    | LaneFenced
    | MessageAccepted
    | MessageDispatching
    | MessageRetryScheduled
    | MessageCancelled
    | LaneCheckpointed
    | MessageSent
    | MessageDelivered
    | MessageRead
    | MessageFailed
    | MessageReplied
    | InboundMessageReceived
    | SendsHeld
    | SendsReleased
    | SendsWithdrawn
    | CampaignFanoutProgressed
    | CampaignFanoutCompleted
)
