"""Wiring of the sequence-service: what it subscribes to and what runs in the background."""

from __future__ import annotations

from wacast.runtime.service import ServiceContext
from wacast.sequence_service.settings import Settings


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Owns sequences and enrollments; emits send requests."""
