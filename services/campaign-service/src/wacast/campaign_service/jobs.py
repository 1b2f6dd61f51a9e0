"""Long work that runs in the background of a replica: fan-outs and imports.

One task per job key in this process. A job's progress lives in its stream (a fan-out's
cursor, an import's progress events), so any replica can take over a job that nobody
advances: `Adopter` looks for unfinished jobs in the private tables, at start-up and every
`adopt_seconds`, and starts those whose stream position did not move since it last looked
(at start-up, every unfinished job: two replicas that both start one are sorted out by the
expected sequence of the job's subject, the loser stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("wacast.campaigns.jobs")

Key = tuple[str, str, str]
"""(kind, tenant, id)"""
Work = Callable[[], Coroutine[Any, Any, None]]


class Jobs:
    def __init__(self) -> None:
        self.tasks: dict[Key, asyncio.Task[None]] = {}

    def running(self, key: Key) -> bool:
        task = self.tasks.get(key)
        return task is not None and not task.done()

    def start(self, key: Key, work: Work) -> None:
        """Run `work` unless the job runs here already."""
        if self.running(key):
            return
        self.tasks[key] = asyncio.create_task(self._guarded(key, work), name=":".join(key))

    async def _guarded(self, key: Key, work: Work) -> None:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s failed; it is taken up again later", key)
        finally:
            if self.tasks.get(key) is asyncio.current_task():
                del self.tasks[key]

    async def wait(self, key: Key) -> None:
        task = self.tasks.get(key)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Signal:
    """Wakes every waiter that subscribed: one `asyncio.Event` each, so none misses it."""

    def __init__(self) -> None:
        self.events: list[asyncio.Event] = []

    def subscribe(self) -> asyncio.Event:
        event = asyncio.Event()
        self.events.append(event)
        return event

    def fire(self) -> None:
        for event in self.events:
            event.set()


async def first_of(*waits: Awaitable[Any]) -> None:
    """Return when the first of `waits` is done; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


Position = Callable[[str, str], Awaitable[int]]
Unfinished = Callable[[], Awaitable[list[tuple[str, str]]]]


class Adopter:
    """Takes over jobs of one kind that no replica advances."""

    def __init__(
        self,
        jobs: Jobs,
        kind: str,
        unfinished: Unfinished,
        position: Position,
        work: Callable[[str, str], Work],
    ) -> None:
        self.jobs = jobs
        self.kind = kind
        self.unfinished = unfinished
        self.position = position
        self.work = work
        self.seen: dict[Key, int] = {}
        self.first = True

    async def look(self) -> None:
        seen: dict[Key, int] = {}
        for tenant_id, ident in await self.unfinished():
            key = (self.kind, tenant_id, ident)
            if self.jobs.running(key):
                continue
            seen[key] = position = await self.position(tenant_id, ident)
            if self.first or self.seen.get(key) == position:
                log.info("taking up %s %s of %s", self.kind, ident, tenant_id)
                self.jobs.start(key, self.work(tenant_id, ident))
        self.seen, self.first = seen, False
