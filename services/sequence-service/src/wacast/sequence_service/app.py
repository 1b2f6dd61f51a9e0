"""Wiring of the sequence-service: what it subscribes to and what runs in the background."""

from __future__ import annotations

from wacast.contracts.commands import SequenceCommand
from wacast.contracts.streams import DEVICES, LEADS, MESSAGES
from wacast.runtime.commands import serve_commands, serve_query
from wacast.runtime.consumer import consume_events
from wacast.runtime.eventstore import EventStore
from wacast.runtime.projection import ProjectionRunner
from wacast.runtime.service import ServiceContext
from wacast.sequence_service.adapters.lookups import Lookups
from wacast.sequence_service.adapters.projection import PrivateTables
from wacast.sequence_service.core import Core
from wacast.sequence_service.enrolling import Enroller
from wacast.sequence_service.enrollments import EnrollmentStore
from wacast.sequence_service.handlers import Commands
from wacast.sequence_service.progress import PROGRESS_QUERY, Progress, ProgressQuery
from wacast.sequence_service.reactions import Reactions
from wacast.sequence_service.settings import Settings
from wacast.sequence_service.timers import Timers

OWNER = "sequences"


def build(ctx: ServiceContext[Settings]) -> Core:
    if ctx.pool is None:
        raise RuntimeError("the sequence-service needs its database")
    schema = ctx.settings.sequences_schema
    tables = PrivateTables()
    lookups = Lookups(ctx.pool, schema)
    store: EventStore = ctx.store
    runs = EnrollmentStore(store, ctx.topology, lookups)
    runner = ProjectionRunner(
        tables,
        pool=ctx.pool,
        nc=ctx.nc,
        topology=ctx.topology,
        schema=schema,
        dead_letters=ctx.dead_letters,
    )
    return Core(
        settings=ctx.settings,
        topology=ctx.topology,
        store=store,
        clock=ctx.clock,
        lookups=lookups,
        tables=tables,
        runner=runner,
        runs=runs,
        enroller=Enroller(store, ctx.topology, lookups, runs),
    )


async def setup(ctx: ServiceContext[Settings]) -> None:
    """Owns sequences and enrollments; emits send requests."""
    core = build(ctx)
    await core.runner.prepare()
    commands, reactions, timers = Commands(core), Reactions(core), Timers(core)
    progress = Progress(core)
    serve_commands(ctx.broker, ctx.topology, OWNER, SequenceCommand, commands.handle)
    serve_query(
        ctx.broker, ctx.topology, PROGRESS_QUERY, ProgressQuery, progress.answer, queue=OWNER
    )
    topology = ctx.topology
    for spec, kind, name, handle in (
        (LEADS, "lead", "leads", reactions.on_lead),
        (DEVICES, "device", "devices", reactions.on_device),
        (MESSAGES, "msg", "outcomes", reactions.on_message),
        (MESSAGES, "lane", "cancellations", reactions.on_message),
        (MESSAGES, "inbound", "replies", reactions.on_inbound),
    ):
        consume_events(
            ctx.broker,
            topology,
            ctx.dead_letters,
            spec=spec,
            subject=topology.all_of(kind),
            durable=f"sequence-service-{name}",
            handle=handle,
        )

    async def ready() -> bool:
        return timers.ready.is_set()

    ctx.checks["caught_up"] = ready
    ctx.background(core.runner.run)
    ctx.background(timers.run)
