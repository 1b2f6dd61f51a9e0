"""Wiring of the campaign-service into the service host: commands, consumers, background."""

from __future__ import annotations

from wacast.campaign_service.service import CampaignService
from wacast.campaign_service.settings import Settings
from wacast.runtime.service import ServiceContext


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Owns leads, media references and campaigns; emits send requests."""
    assert ctx.pool is not None, "the campaign-service keeps private tables in Postgres"
    service = CampaignService(
        nc=ctx.nc,
        pool=ctx.pool,
        topology=ctx.topology,
        clock=ctx.clock,
        settings=ctx.settings,
        dead_letters=ctx.dead_letters,
    )
    await service.prepare()
    service.register(ctx.broker)
    ctx.background(service.run)
