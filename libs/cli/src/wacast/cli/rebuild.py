"""Rebuilding registered projections from the streams, with progress.

`wacast.runtime.projection.rebuild` replays into a shadow schema and swaps it in; meanwhile
the shadow's checkpoints are polled to draw how far each projection has come.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from wacast.cli.commands_common import CliError
from wacast.cli.progress import Task, Tracker
from wacast.contracts.streams import DEAD_LETTER_KEY
from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.projection import Projection, rebuild
from wacast.runtime.registry import ProjectionRegistration
from wacast.runtime.tasks import cancel_and_wait

POLL_SECONDS = 0.25


def select(
    registrations: list[ProjectionRegistration], name: str | None
) -> list[ProjectionRegistration]:
    if name is None:
        return registrations
    chosen = [r for r in registrations if r.name == name]
    if not chosen:
        known = ", ".join(r.name for r in registrations) or "none"
        raise CliError(f"no projection named {name!r} is registered (registered: {known})", 2)
    return chosen


async def stream_ends(nc: Client, topology: Topology, projection: Projection) -> dict[str, int]:
    """The last sequence of each stream the projection reads; refuses missing streams."""
    js = nc.jetstream()
    ends: dict[str, int] = {}
    for spec in projection.streams:
        try:
            info = await js.stream_info(spec.name(topology))
        except NotFoundError:
            raise CliError(
                f"stream {spec.name(topology)} does not exist: is namespace "
                f"{topology.prefix!r} right, and has the system run once?"
            ) from None
        ends[spec.key] = int(info.state.last_seq)
    try:
        await js.stream_info(topology.stream(DEAD_LETTER_KEY))
    except NotFoundError:
        raise CliError(f"the dead-letter stream of {topology.prefix!r} does not exist") from None
    return ends


async def watch(pool: asyncpg.Pool, schema: str, name: str, task: Task) -> None:
    """Draw the shadow schema's checkpoints until cancelled."""
    shadow = f"{schema}__rebuild"  # the name `rebuild` gives its shadow schema
    while True:
        await asyncio.sleep(POLL_SECONDS)
        with contextlib.suppress(asyncpg.PostgresError):
            async with pool.acquire() as conn:
                done = await conn.fetchval(
                    f'SELECT coalesce(sum(seq), 0) FROM "{shadow}".projection_checkpoints '
                    "WHERE projection = $1",
                    name,
                )
            task.update(int(done or 0))


async def rebuild_projections(
    nc: Client,
    pool: asyncpg.Pool,
    topology: Topology,
    registrations: list[ProjectionRegistration],
    progress: Tracker,
) -> dict[str, dict[str, int]]:
    """Rebuild each registration in turn; returns the positions each one reached."""
    reached: dict[str, dict[str, int]] = {}
    for registration in registrations:
        projection = registration.factory()
        if projection.name != registration.name:
            raise CliError(
                f"projection {registration.name!r} builds one named {projection.name!r}; "
                "a registration's name must match its projection's"
            )
        ends = await stream_ends(nc, topology, projection)
        task = progress.task(f"rebuild {registration.name}", total=sum(ends.values()))
        watcher = asyncio.create_task(watch(pool, registration.schema, registration.name, task))
        try:
            reached[registration.name] = await rebuild(
                projection,
                pool=pool,
                nc=nc,
                topology=topology,
                schema=registration.schema,
                dead_letters=DeadLetters(nc, topology),
            )
        finally:
            await cancel_and_wait([watcher])
        task.update(sum(reached[registration.name].values()))
    return reached
