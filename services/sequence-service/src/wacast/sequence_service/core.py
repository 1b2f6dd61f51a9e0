"""What handlers, reactions and timers share: the stores, the clock, and operations on
many enrollments at once (remove, resume, replan)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from nats.js.client import JetStreamContext

from wacast.contracts.sequences import SequenceEventBase
from wacast.contracts.streams import SEQUENCES, StreamSpec
from wacast.contracts.subjects import Topology
from wacast.runtime.clock import Clock
from wacast.runtime.eventstore import EventStore
from wacast.runtime.projection import ProjectionRunner
from wacast.sequence_service.adapters.lookups import Lookups, Snapshot
from wacast.sequence_service.adapters.projection import PrivateTables
from wacast.sequence_service.domain import enrollment as rules
from wacast.sequence_service.domain import sequence as sequences
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.steps import replan
from wacast.sequence_service.enrolling import Enroller
from wacast.sequence_service.enrollments import EnrollmentStore, Outcome
from wacast.sequence_service.settings import Settings

log = logging.getLogger("wacast.sequences")


@dataclass
class Core:
    settings: Settings
    topology: Topology
    store: EventStore
    clock: Clock
    lookups: Lookups
    tables: PrivateTables
    runner: ProjectionRunner
    runs: EnrollmentStore
    enroller: Enroller
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def js(self) -> JetStreamContext:
        return self.store.js

    async def caught_up(self, *specs: StreamSpec, timeout: float | None = None) -> bool:
        """Wait (bounded) until the private tables hold everything stored in `specs` now."""
        wait = self.settings.sequences_read_timeout if timeout is None else timeout
        for spec in specs:
            info = await self.js.stream_info(spec.name(self.topology))
            if not await self.runner.wait_until(spec.key, int(info.state.last_seq), wait):
                log.warning("private tables behind %s after %.1fs", spec.key, wait)
                return False
        return True

    async def read_own(self, seq: int) -> None:
        """Let the private tables reach what was just appended before answering."""
        if seq:
            await self.runner.wait_until(SEQUENCES.key, seq, self.settings.sequences_read_timeout)

    async def sequence(self, tenant_id: str, sequence_id: str) -> tuple[Sequence | None, int]:
        """The sequence replayed from its subject, and its last sequence."""
        stored = await self.store.load(SEQUENCES, self.topology.sequence(tenant_id, sequence_id))
        state: Sequence | None = None
        for item in stored:
            if isinstance(item.event, SequenceEventBase):
                state = sequences.evolve(state, item.event)
        return state, (stored[-1].seq if stored else 0)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` after the reply; a failure is logged (the work is idempotent)."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(guarded(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop_spawned(self) -> None:
        for task in self._tasks:
            task.cancel()

    # operations on many enrollments ----------------------------------------------------
    async def remove(self, snapshots: Iterable[Snapshot], reason: str) -> Outcome:
        now = self.clock.now()
        return await self.runs.decide_many(
            list(snapshots), lambda state: rules.remove(state, reason, now)
        )

    async def resume(self, snapshots: Iterable[Snapshot], reason: str) -> Outcome:
        now = self.clock.now()
        return await self.runs.decide_many(
            list(snapshots), lambda state: rules.resume(state, reason, now)
        )

    async def remove_from_sequence(self, tenant_id: str, sequence_id: str, reason: str) -> None:
        await self.caught_up(SEQUENCES)
        async for chunk in self.lookups.running_of_sequence(tenant_id, sequence_id):
            await self.remove(chunk, reason)

    async def reconcile(self) -> None:
        """Finish what a stop may have cut short: removals of archived sequences, and
        resumptions of enrollments whose device came back."""
        for tenant_id, sequence_id in await self.lookups.archived_with_running():
            await self.remove_from_sequence(tenant_id, sequence_id, "sequence_archived")
        await self.resume(await self.lookups.paused_but_online(), "device_connected")

    async def replan_sequence(self, tenant_id: str, sequence_id: str) -> None:
        """The steps changed: move waiting steps to what the new steps say."""
        await self.caught_up(SEQUENCES)
        found = await self.lookups.sequences([(tenant_id, sequence_id)])
        sequence = found.get((tenant_id, sequence_id))
        if sequence is None:
            return
        timezone = (await self.lookups.timezones([tenant_id]))[tenant_id]
        now = self.clock.now()
        async for chunk in self.lookups.running_of_sequence(tenant_id, sequence_id):
            await self.runs.decide_many(chunk, lambda s: replan(s, sequence, now, timezone))
