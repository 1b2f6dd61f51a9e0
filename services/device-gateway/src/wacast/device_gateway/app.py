"""Wiring of the device-gateway: what it subscribes to and what runs in the background."""

from __future__ import annotations

import gc

from wacast.device_gateway.gateway import Gateway
from wacast.device_gateway.settings import Settings
from wacast.runtime.service import ServiceContext

GC_YOUNG_THRESHOLD = 50_000
"""Allocations between two young-generation collections (Python's default, 700, has the
collector walk the heap hundreds of times a second under load: a fifth of the CPU)."""


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Owns WhatsApp sessions: devices, pairing, connection health and paced send lanes."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)
    gateway = Gateway(ctx, freeze_gc=True)
    gateway.register(ctx.broker)
    ctx.checks["gateway"] = gateway.ready
    ctx.background(gateway.run)
