"""Request and response shapes of `/api/v1/webhooks`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from wacast.contracts import webhooks as wh

EventType = Annotated[str, Meta(min_length=1, max_length=64)]


class WebhookCreate(msgspec.Struct, frozen=True, kw_only=True):
    """`events`: public event types (see `GET /webhooks/event-types`), or `["*"]` for all.
    The URL must reach a public address (private, loopback and link-local ones are refused
    unless the installation allows them)."""

    url: Annotated[str, Meta(min_length=1, max_length=wh.MAX_URL_LENGTH)]
    events: Annotated[list[EventType], Meta(min_length=1, max_length=len(wh.CATALOG))]
    description: Annotated[str, Meta(max_length=wh.MAX_DESCRIPTION_LENGTH)] = ""


class WebhookCreated(msgspec.Struct, frozen=True, kw_only=True):
    """The new endpoint with its signing `secret`, shown this once: keep it to verify the
    `webhook-signature` of every delivery."""

    id: str
    url: str
    events: list[str]
    description: str
    secret: str
    created_at: datetime
    seq: int
    stream: str


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime


class WebhookPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Webhook]
    next_cursor: str | None = None


class EventTypes(msgspec.Struct, frozen=True, kw_only=True):
    items: list[str]


def public(found: wh.Webhook) -> Webhook:
    return Webhook(
        id=found.id,
        url=found.url,
        events=found.event_types,
        description=found.description,
        created_at=found.created_at,
    )
