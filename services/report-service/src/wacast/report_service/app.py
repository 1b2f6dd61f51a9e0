"""Wiring of the report-service: the `reports` projection, its queries, live progress."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from wacast.report_service.handlers import Reader
from wacast.report_service.live import keep_publishing
from wacast.report_service.projections import SCHEMA, Reports
from wacast.report_service.settings import Settings
from wacast.runtime.projection import ProjectionRunner
from wacast.runtime.service import ServiceContext


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Builds the Postgres read models and answers queries."""
    assert ctx.pool is not None, "the report-service runs with a database"
    settings = ctx.settings
    projection = Reports()
    runner = ProjectionRunner(
        projection,
        pool=ctx.pool,
        nc=ctx.nc,
        topology=ctx.topology,
        schema=SCHEMA,
        dead_letters=ctx.dead_letters,
        batch_size=settings.projection_batch_size,
    )
    await runner.prepare()
    queries = await asyncpg.create_pool(
        settings.database_url,
        min_size=1,
        max_size=settings.query_pool_size,
        server_settings={"search_path": SCHEMA},
    )
    window = timedelta(seconds=settings.receipt_window_seconds)
    Reader(
        queries,
        runner,
        ctx.clock,
        wait_seconds=settings.query_wait_seconds,
        receipt_window=window,
    ).serve(ctx.broker, ctx.topology)

    async def live() -> None:
        try:
            await keep_publishing(
                ctx.nc,
                ctx.topology,
                queries,
                projection,
                ctx.clock,
                window,
                settings.live_interval_seconds,
            )
        finally:
            await queries.close()

    ctx.background(runner.run)
    ctx.background(live)
