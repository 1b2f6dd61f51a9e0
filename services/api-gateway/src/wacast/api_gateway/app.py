"""Wiring of the api-gateway: what it subscribes to and what runs in the background."""

from __future__ import annotations

from wacast.api_gateway.settings import Settings
from wacast.runtime.service import ServiceContext


async def setup(ctx: ServiceContext[Settings]) -> None:
    """The public HTTP and WebSocket API and the web dashboard."""
