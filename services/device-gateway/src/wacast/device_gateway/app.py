"""Wiring of the device-gateway: what it subscribes to and what runs in the background."""

from __future__ import annotations

from wacast.device_gateway.gateway import Gateway
from wacast.device_gateway.settings import Settings
from wacast.runtime.service import ServiceContext


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Owns WhatsApp sessions: devices, pairing, connection health and paced send lanes."""
    gateway = Gateway(ctx)
    gateway.register(ctx.broker)
    ctx.checks["gateway"] = gateway.ready
    ctx.background(gateway.run)
