"""Value objects shared by events and commands.

They are frozen structs validated in `__post_init__`: msgspec runs it on decode as well
(turning a `ValueError` into a `ValidationError`), so a bad value is refused at the edge,
whether it comes from the HTTP API, a command or a stored event.
"""

from __future__ import annotations

from typing import Literal

import msgspec

LeadStatus = Literal["prospect", "customer"]
MediaKind = Literal["image", "video", "document"]
Origin = Literal["campaign", "sequence"]
"""Which kind of owner asked for a message: a campaign or a sequence enrollment."""

MAX_GAP_SECONDS = 86_400.0


class Pacing(msgspec.Struct, frozen=True, kw_only=True):
    """Random gap between two sends of one device, uniform in [min_seconds, max_seconds]."""

    min_seconds: float = 10.0
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"pacing needs 0 <= min_seconds <= max_seconds, "
                f"got {self.min_seconds} and {self.max_seconds}"
            )
        if self.max_seconds > MAX_GAP_SECONDS:
            raise ValueError(
                f"pacing max_seconds must be at most {MAX_GAP_SECONDS:.0f}, got {self.max_seconds}"
            )


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often a known-not-sent transient failure is tried again.

    Attempt n (n >= 2) waits `backoff_seconds * 2 ** (n - 2)` after the failure. An
    outcome that is not known (timeout, crash mid-send) is never retried.
    """

    max_attempts: int = 3
    backoff_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 20:
            raise ValueError(f"retry max_attempts must be 1-20, got {self.max_attempts}")
        if not 0 <= self.backoff_seconds <= MAX_GAP_SECONDS:
            raise ValueError(
                f"retry backoff_seconds must be 0-{MAX_GAP_SECONDS:.0f}, got {self.backoff_seconds}"
            )


class SendWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Hours in which sending is allowed: on `days` (0 = Monday .. 6 = Sunday), from
    `start_hour` (inclusive) to `end_hour` (exclusive), local to `timezone`.

    An empty `timezone` means the tenant's; services resolve it to a concrete zone before
    they put a window on a send request. Windows do not cross midnight.
    """

    days: list[int] = msgspec.field(default_factory=lambda: [0, 1, 2, 3, 4])
    start_hour: int = 9
    end_hour: int = 18
    timezone: str = ""

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("a send window needs at least one day")
        if any(not 0 <= day <= 6 for day in self.days):
            raise ValueError(f"send window days must be 0 (Monday) to 6 (Sunday), got {self.days}")
        if len(set(self.days)) != len(self.days):
            raise ValueError(f"send window days must not repeat, got {self.days}")
        if not 0 <= self.start_hour < self.end_hour <= 24:
            raise ValueError(
                "a send window needs 0 <= start_hour < end_hour <= 24, "
                f"got {self.start_hour} to {self.end_hour}"
            )


class MessageContent(msgspec.Struct, frozen=True, kw_only=True):
    """What to send: text (a template on campaigns and steps, rendered on a send request)
    and optionally one media item; with media, the text is its caption."""

    text: str = ""
    media_id: str = ""

    def __post_init__(self) -> None:
        if not self.text.strip() and not self.media_id:
            raise ValueError("a message needs text, media or both")


class MediaRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where the gateway finds a media item's bytes (JetStream object store) and how to
    present it; resolved by the requester so the gateway needs no media catalogue."""

    media_id: str
    kind: MediaKind
    mime: str
    object_name: str
    filename: str = ""


class Audience(msgspec.Struct, frozen=True, kw_only=True):
    """Which leads a campaign goes to; every filter narrows. Opted-out leads never match.

    `tags` match when a lead has any of them (`tag_match="any"`) or all of them; empty
    `device_ids` means leads of every device.
    """

    status: Literal["all", "prospect", "customer"] = "all"
    tags: list[str] = msgspec.field(default_factory=list)
    tag_match: Literal["any", "all"] = "any"
    device_ids: list[str] = msgspec.field(default_factory=list)


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a sequence, `delay_seconds` after the previous step was sent (after
    enrollment for the first step).

    `id` is stable across edits: a message id is derived from enrollment and step id, so
    a lead never gets the same step twice even after the steps are reordered.
    """

    id: str
    delay_seconds: int
    message: MessageContent
    window: SendWindow | None = None

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > 64:
            raise ValueError(f"a step id must be 1-64 characters, got {self.id!r}")
        if self.delay_seconds < 0:
            raise ValueError(f"step {self.id} delay_seconds must be >= 0")


def check_steps(steps: list[Step]) -> list[Step]:
    """A sequence needs at least one step and unique step ids."""
    if not steps:
        raise ValueError("a sequence needs at least one step")
    ids = [step.id for step in steps]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"step ids must be unique, repeated: {', '.join(duplicated)}")
    return steps


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """Enrolls a lead automatically when something happens to it.

    `lead_created`: any new lead; `tag_added`: the lead gains `tag`; `status_changed`:
    the lead's status becomes `status`. `device_ids` narrows to leads of those devices.
    """

    on: Literal["lead_created", "tag_added", "status_changed"]
    tag: str = ""
    status: LeadStatus | None = None
    device_ids: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.on == "tag_added" and not self.tag:
            raise ValueError("a tag_added trigger needs a tag")
        if self.on == "status_changed" and self.status is None:
            raise ValueError("a status_changed trigger needs a status")


class RowError(msgspec.Struct, frozen=True, kw_only=True):
    """Why one row of a lead import was refused. Never holds the row's personal data."""

    row: int
    reason: str


class MessageCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Message totals by outcome, e.g. of one campaign."""

    requested: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    cancelled: int = 0
