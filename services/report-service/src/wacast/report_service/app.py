"""Wiring of the report-service: what it subscribes to and what runs in the background."""

from __future__ import annotations

from wacast.report_service.settings import Settings
from wacast.runtime.service import ServiceContext


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Builds the Postgres read models and answers queries."""
