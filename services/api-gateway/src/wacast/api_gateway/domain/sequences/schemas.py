"""Request and response shapes of `/api/v1/sequences`."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from wacast.contracts import queries as q
from wacast.contracts.values import (
    Audience,
    MessageContent,
    Pacing,
    RetryPolicy,
    SendWindow,
    Trigger,
)

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class StepCreate(msgspec.Struct, frozen=True, kw_only=True):
    """`delay_seconds` after the previous step was sent (after enrollment for the first).
    `id` keeps a step apart across edits; one is made up when absent."""

    id: Id | None = None
    delay_seconds: Annotated[int, Meta(ge=0, le=31_536_000)]
    message: MessageContent
    window: SendWindow | None = None


class SequenceCreate(msgspec.Struct, frozen=True, kw_only=True):
    """Created `active` unless `status` is `draft`."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    steps: Annotated[list[StepCreate], Meta(min_length=1, max_length=100)]
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    triggers: Annotated[list[Trigger], Meta(max_length=20)] = msgspec.field(default_factory=list)
    on_failure: Literal["stop", "continue"] = "stop"
    stop_on_reply: Literal["end", "pause", "ignore"] = "end"
    status: Literal["draft", "active"] = "active"


class EnrollmentCreate(msgspec.Struct, frozen=True, kw_only=True):
    """Give `lead_ids`, or a `filter` that picks the leads (like a campaign's audience:
    status, tags, devices; opted-out leads never match)."""

    lead_ids: Annotated[list[Annotated[str, Meta(max_length=128)]], Meta(max_length=10_000)] = (
        msgspec.field(default_factory=list)
    )
    filter: Audience | None = None


class Enrolled(msgspec.Struct, frozen=True, kw_only=True):
    """`enrolled` leads started the sequence now; `already` were in it; `skipped` (given
    by id) cannot be enrolled: opted out or without a device."""

    sequence_id: str
    enrolled: int
    already: int
    skipped: int = 0
    seq: int
    stream: str


class SequenceResult(q.Sequence, frozen=True, kw_only=True):
    """The sequence after a write, with the write's `seq` and `stream`."""

    seq: int
    stream: str
