"""Wiring of the webhook-service: its tables, commands, queries, intake and dispatcher."""

from __future__ import annotations

from functools import partial

from wacast.contracts import webhooks as wh
from wacast.contracts.commands import WebhookCommand
from wacast.runtime.commands import serve_commands, serve_query
from wacast.runtime.projection import ProjectionRunner
from wacast.runtime.service import ServiceContext
from wacast.runtime.urlguard import Allowlist, allowlist_entries
from wacast.webhook_service.adapters.http import Poster
from wacast.webhook_service.adapters.lookups import Lookups
from wacast.webhook_service.adapters.tables import WebhookTables
from wacast.webhook_service.core import Core
from wacast.webhook_service.directory import Directory
from wacast.webhook_service.dispatcher import Dispatcher
from wacast.webhook_service.handlers import Commands, Queries
from wacast.webhook_service.intake import Intake
from wacast.webhook_service.settings import Settings

OWNER = "webhooks"


def build(ctx: ServiceContext[Settings]) -> Core:
    if ctx.pool is None:
        raise RuntimeError("the webhook-service needs its database")
    settings = ctx.settings
    directory = Directory()
    runner = ProjectionRunner(
        WebhookTables(directory),
        pool=ctx.pool,
        nc=ctx.nc,
        topology=ctx.topology,
        schema=settings.webhooks_schema,
        dead_letters=ctx.dead_letters,
    )
    poster = Poster(
        Allowlist.parse(allowlist_entries(settings.url_allowlist)),
        timeout=settings.webhook_timeout_seconds,
        max_connections=settings.webhook_concurrency,
    )
    return Core(
        settings=settings,
        topology=ctx.topology,
        store=ctx.store,
        clock=ctx.clock,
        directory=directory,
        lookups=Lookups(ctx.pool, settings.webhooks_schema),
        runner=runner,
        poster=poster,
    )


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Owns webhook endpoints and their delivery log; reads source events on its own
    durable consumers, so sending never waits on a webhook."""
    core = build(ctx)
    await core.runner.catch_up()
    for endpoint in await core.lookups.live_endpoints():
        core.directory.add(endpoint)
    commands, queries = Commands(core), Queries(core)
    broker, topology = ctx.broker, ctx.topology
    serve_commands(broker, topology, OWNER, WebhookCommand, commands.handle)
    serve_query(broker, topology, wh.LIST_QUERY, wh.ListWebhooks, queries.list, queue=OWNER)
    serve_query(broker, topology, wh.GET_QUERY, wh.GetWebhook, queries.get, queue=OWNER)
    serve_query(
        broker, topology, wh.DELIVERIES_QUERY, wh.ListDeliveries, queries.deliveries, queue=OWNER
    )
    intake = Intake(core, ctx.dead_letters)
    for stream_key, kind in wh.SOURCES:
        ctx.background(partial(intake.run, stream_key, kind))
    dispatcher = Dispatcher(core)

    async def deliver() -> None:
        try:
            await dispatcher.run()
        finally:
            await core.poster.close()

    ctx.background(core.runner.run)
    ctx.background(deliver)
