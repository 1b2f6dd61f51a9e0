"""Wiring of the campaign-service: what it subscribes to and what runs in the background."""

from __future__ import annotations

from wacast.campaign_service.settings import Settings
from wacast.runtime.service import ServiceContext


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Owns leads, media references and campaigns; emits send requests."""
