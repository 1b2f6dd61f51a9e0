"""Commands: what each owning service accepts, sent by request/reply on
`Topology.command(owner, type)` and answered with a `Reply`.

Ids of things to create may be given by the client (then a retry cannot create twice)
or left empty for the owner to assign. Shapes are validated on decode (value objects);
rules that need state (a phone already claimed, a campaign triggered already) are the
owner's, answered with a `Problem`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from wacast.contracts.base import Command
from wacast.contracts.subjects import Topology
from wacast.contracts.values import (
    Audience,
    LeadStatus,
    MediaKind,
    MessageContent,
    Pacing,
    RetryPolicy,
    SendWindow,
    Step,
    Trigger,
    check_steps,
)
from wacast.contracts.webhooks import CreateWebhook, DeleteWebhook, ReplayWebhookDelivery

# -- device-gateway --------------------------------------------------------------------


class RegisterDevice(Command, frozen=True, kw_only=True):
    name: str
    driver: Literal["sim", "whatsapp"] = "whatsapp"
    device_id: str = ""


class StartPairing(Command, frozen=True, kw_only=True):
    """`code` pairing needs the device's own `phone`; the QR or code goes out live."""

    device_id: str
    method: Literal["qr", "code"] = "qr"
    phone: str = ""

    def __post_init__(self) -> None:
        if self.method == "code" and not self.phone:
            raise ValueError("pairing by code needs the device's phone number")


class CancelPairing(Command, frozen=True, kw_only=True):
    device_id: str


class RenameDevice(Command, frozen=True, kw_only=True):
    device_id: str
    name: str


class SetDeviceLimits(Command, frozen=True, kw_only=True):
    device_id: str
    daily_cap: int | None = None
    warmup: bool = False

    def __post_init__(self) -> None:
        if self.daily_cap is not None and self.daily_cap < 0:
            raise ValueError("daily_cap must be >= 0")


class LogoutDevice(Command, frozen=True, kw_only=True):
    """Unlink the session; the device stays, ready to pair again."""

    device_id: str


class DeleteDevice(Command, frozen=True, kw_only=True):
    device_id: str
    reason: str = ""


DeviceCommand = (
    RegisterDevice
    | StartPairing
    | CancelPairing
    | RenameDevice
    | SetDeviceLimits
    | LogoutDevice
    | DeleteDevice
)

# -- campaign-service: leads -----------------------------------------------------------


class CreateLead(Command, frozen=True, kw_only=True):
    """`phone` as written; the owner normalises it to E.164 with the tenant's region."""

    phone: str
    name: str = ""
    device_id: str = ""
    status: LeadStatus = "prospect"
    tags: list[str] = msgspec.field(default_factory=list)
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    lead_id: str = ""


class UpdateLead(Command, frozen=True, kw_only=True):
    """Change what is given (None: unchanged); `attributes` replaces the whole map."""

    lead_id: str
    phone: str | None = None
    name: str | None = None
    attributes: dict[str, str] | None = None
    status: LeadStatus | None = None
    tags: list[str] | None = None
    device_id: str | None = None


class TagLeads(Command, frozen=True, kw_only=True):
    """Add and remove tags on many leads at once."""

    lead_ids: list[str]
    add: list[str] = msgspec.field(default_factory=list)
    remove: list[str] = msgspec.field(default_factory=list)


class OptOutLead(Command, frozen=True, kw_only=True):
    lead_id: str
    reason: str = ""


class OptInLead(Command, frozen=True, kw_only=True):
    lead_id: str


class DeleteLead(Command, frozen=True, kw_only=True):
    lead_id: str


class EraseLead(Command, frozen=True, kw_only=True):
    """Delete and purge every trace of the lead's personal data (right to erasure)."""

    lead_id: str


class ImportLeads(Command, frozen=True, kw_only=True):
    """Import a CSV the caller put in the object store under `object_name`."""

    filename: str
    object_name: str
    device_id: str = ""
    status: LeadStatus = "prospect"
    tags: list[str] = msgspec.field(default_factory=list)
    update_existing: bool = False
    import_id: str = ""


# -- campaign-service: media -----------------------------------------------------------


class StoreMedia(Command, frozen=True, kw_only=True):
    """Record media whose (compressed) bytes the caller put in the object store."""

    kind: MediaKind
    mime: str
    bytes: int
    filename: str
    sha256: str
    object_name: str
    width: int | None = None
    height: int | None = None
    source: Literal["upload", "url"] = "upload"
    source_url: str = ""
    original_bytes: int = 0
    media_id: str = ""


class IngestMedia(Command, frozen=True, kw_only=True):
    """Turn an upload or a URL into stored media (sent by the api-gateway).

    Either the caller staged the uploaded bytes in the media bucket under `staged_object`,
    or the owner fetches `url` (http(s), SSRF-guarded). The owner sniffs the type from the
    bytes, compresses images, stores the result, records `MediaStored` and answers with
    `data` {id, kind, mime, bytes}; it deletes the staged object when done.
    """

    filename: str = ""
    staged_object: str = ""
    url: str = ""
    media_id: str = ""

    def __post_init__(self) -> None:
        if bool(self.staged_object) == bool(self.url):
            raise ValueError("media comes from exactly one of an upload or a url")


class DeleteMedia(Command, frozen=True, kw_only=True):
    media_id: str


# -- campaign-service: campaigns -------------------------------------------------------


class CreateCampaign(Command, frozen=True, kw_only=True):
    name: str
    audience: Audience = msgspec.field(default_factory=Audience)
    message: MessageContent
    schedule_at: datetime | None = None
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    send_window: SendWindow | None = None
    campaign_id: str = ""


class ScheduleCampaign(Command, frozen=True, kw_only=True):
    campaign_id: str
    schedule_at: datetime


class TriggerCampaign(Command, frozen=True, kw_only=True):
    """Start sending now. A campaign triggers at most once: a second trigger is refused,
    unless it carries the first one's idempotency key (then it gets the first reply)."""

    campaign_id: str


class PauseCampaign(Command, frozen=True, kw_only=True):
    campaign_id: str
    reason: str = ""


class ResumeCampaign(Command, frozen=True, kw_only=True):
    campaign_id: str


class CancelCampaign(Command, frozen=True, kw_only=True):
    campaign_id: str
    reason: str = ""


CampaignCommand = (
    CreateLead
    | UpdateLead
    | TagLeads
    | OptOutLead
    | OptInLead
    | DeleteLead
    | EraseLead
    | ImportLeads
    | StoreMedia
    | IngestMedia
    | DeleteMedia
    | CreateCampaign
    | ScheduleCampaign
    | TriggerCampaign
    | PauseCampaign
    | ResumeCampaign
    | CancelCampaign
)

# -- sequence-service ------------------------------------------------------------------


class CreateSequence(Command, frozen=True, kw_only=True):
    name: str
    steps: list[Step]
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    triggers: list[Trigger] = msgspec.field(default_factory=list)
    on_failure: Literal["stop", "continue"] = "stop"
    stop_on_reply: Literal["end", "pause", "ignore"] = "end"
    activate: bool = False
    sequence_id: str = ""

    def __post_init__(self) -> None:
        check_steps(self.steps)


class ChangeSequenceSteps(Command, frozen=True, kw_only=True):
    sequence_id: str
    steps: list[Step]

    def __post_init__(self) -> None:
        check_steps(self.steps)


class ChangeSequenceSettings(Command, frozen=True, kw_only=True):
    sequence_id: str
    name: str
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    triggers: list[Trigger] = msgspec.field(default_factory=list)
    on_failure: Literal["stop", "continue"] = "stop"
    stop_on_reply: Literal["end", "pause", "ignore"] = "end"


class ActivateSequence(Command, frozen=True, kw_only=True):
    sequence_id: str


class PauseSequence(Command, frozen=True, kw_only=True):
    sequence_id: str
    reason: str = ""


class ArchiveSequence(Command, frozen=True, kw_only=True):
    sequence_id: str


class EnrollLeads(Command, frozen=True, kw_only=True):
    """Enroll each lead once; a lead enrolled already is reported, not enrolled again."""

    sequence_id: str
    lead_ids: list[str]


class EnrollLeadsByFilter(Command, frozen=True, kw_only=True):
    """Enroll every lead that matches `filter` now (opted-out and deleted leads never
    match); leads enrolled already are counted, not enrolled again."""

    sequence_id: str
    filter: Audience = msgspec.field(default_factory=Audience)


class RemoveEnrollment(Command, frozen=True, kw_only=True):
    """Take a lead out of a sequence (its waiting messages are withdrawn)."""

    sequence_id: str
    lead_id: str
    reason: str = "requested"


class RemoveLeadFromSequences(Command, frozen=True, kw_only=True):
    """Take a lead out of every sequence it is enrolled in (waiting messages withdrawn)."""

    lead_id: str
    reason: str = "requested"


class PauseEnrollment(Command, frozen=True, kw_only=True):
    sequence_id: str
    lead_id: str


class ResumeEnrollment(Command, frozen=True, kw_only=True):
    sequence_id: str
    lead_id: str


SequenceCommand = (
    CreateSequence
    | ChangeSequenceSteps
    | ChangeSequenceSettings
    | ActivateSequence
    | PauseSequence
    | ArchiveSequence
    | EnrollLeads
    | EnrollLeadsByFilter
    | RemoveEnrollment
    | RemoveLeadFromSequences
    | PauseEnrollment
    | ResumeEnrollment
)

# -- api-gateway: tenants and keys -----------------------------------------------------


class CreateTenant(Command, frozen=True, kw_only=True):
    name: str
    timezone: str = "UTC"
    default_region: str = "US"


class ChangeTenantSettings(Command, frozen=True, kw_only=True):
    """The full new settings (see `TenantSettingsChanged`)."""

    name: str
    timezone: str = "UTC"
    default_region: str = "US"
    opt_out_keywords: list[str] | None = None
    """None keeps the defaults."""
    device_daily_cap: int | None = None
    pacing: Pacing = msgspec.field(default_factory=Pacing)


class IssueApiKey(Command, frozen=True, kw_only=True):
    """The caller made the secret and shows it once; only its sha256 travels."""

    key_id: str
    key_hash: str
    name: str
    prefix: str
    expires_at: datetime | None = None


class RevokeApiKey(Command, frozen=True, kw_only=True):
    key_id: str
    reason: str = ""


TenantCommand = CreateTenant | ChangeTenantSettings | IssueApiKey | RevokeApiKey

# -- webhook-service (the commands live in `webhooks`) ---------------------------------

WebhookCommand = CreateWebhook | DeleteWebhook | ReplayWebhookDelivery

# -- routing ---------------------------------------------------------------------------

OWNERS: dict[str, Any] = {
    "devices": DeviceCommand,
    "campaigns": CampaignCommand,
    "sequences": SequenceCommand,
    "tenants": TenantCommand,
    "webhooks": WebhookCommand,
}
"""Command union of each owner, keyed by the owner's token in command subjects."""


def owner_of(command: type[Command]) -> str:
    for owner, union in OWNERS.items():
        if command in union.__args__:
            return owner
    raise KeyError(command.__name__)


def command_subject(topology: Topology, command: type[Command]) -> str:
    """Where `command` is sent: `<prefix>.cmd.<owner>.<type>`."""
    return topology.command(owner_of(command), str(command.__struct_config__.tag))
