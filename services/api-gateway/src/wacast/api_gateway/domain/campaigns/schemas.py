"""Request and response shapes of `/api/v1/campaigns`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from wacast.contracts import queries as q
from wacast.contracts.values import Audience, MessageContent, Pacing, RetryPolicy, SendWindow

Reason = Annotated[str, Meta(max_length=200)]


class CampaignCreate(msgspec.Struct, frozen=True, kw_only=True):
    """Without `schedule_at` the campaign triggers at once; with one, it triggers then.
    `message.text` may use `{name}`, `{phone}` and `{attributes.<key>}` placeholders."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    audience: Audience = msgspec.field(default_factory=Audience)
    message: MessageContent
    schedule_at: datetime | None = None
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    send_window: SendWindow | None = None


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    schedule_at: datetime


class Reasoned(msgspec.Struct, frozen=True, kw_only=True):
    reason: Reason = ""


class CampaignResult(q.Campaign, frozen=True, kw_only=True):
    """The campaign after a write, with the write's `seq` and `stream`."""

    seq: int
    stream: str
