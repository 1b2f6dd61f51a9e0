"""Durable timers: due steps are fired from the private `enrollments` table.

Due times are rows of a projection, so they survive restarts and are rebuilt from events;
a step that fell due while the service was down is fired when it comes back. The loop
sleeps on the runtime clock until the nearest due time, and wakes early whenever the
projection applies new sequence events (a nearer due time, a resumed enrollment, an
activated sequence). Firing reads due rows in due order, decides for each in memory, and
appends send requests, then step records, in atomic batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Histogram

from wacast.contracts.sequences import EnrollmentPaused
from wacast.contracts.streams import SEQUENCES
from wacast.contracts.values import MediaRef
from wacast.runtime.tasks import cancel_and_wait
from wacast.sequence_service.adapters.lookups import DueKey, Snapshot
from wacast.sequence_service.adapters.projection import PrivateTables
from wacast.sequence_service.core import Core
from wacast.sequence_service.domain import enrollment as rules
from wacast.sequence_service.domain.enrollment import NOTHING, Decision, Enrollment
from wacast.sequence_service.domain.steps import Surroundings, fire

log = logging.getLogger("wacast.sequences.timers")

FIRED = Counter("wacast_sequence_steps_due_total", "Due enrollments fired")
LAG = Histogram(
    "wacast_sequence_step_lag_seconds",
    "How late a due step was decided (clock time behind its due time)",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
IDLE_WAKE_SECONDS = 60.0
PIPELINE = 2
"""Pages of due steps being appended at once while the next page is read."""
DEFERRED_RETRY_SECONDS = 1.0


class Timers:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Catch up with the streams once, then fire due steps for ever."""
        while not await self.core.caught_up(*PrivateTables.streams, timeout=30.0):
            log.info("waiting for the private tables to catch up")
        self.ready.set()
        self.core.spawn(self.core.reconcile(), "reconcile")
        try:
            while True:
                try:
                    deferred = await self.fire_due()
                except Exception:  # the bus or the database went away: try again shortly
                    log.exception("firing due steps failed; retrying")
                    deferred = True
                await self._sleep(deferred)
        finally:
            self.core.stop_spawned()  # `reconcile` finishes cut-short removals at next start

    async def fire_due(self) -> bool:
        """Fire everything due now; True when some could not be decided yet.

        Pages of due enrollments are read in due order while the previous pages are being
        appended (up to PIPELINE pages in flight: they hold different enrollments).
        """
        core = self.core
        now = core.clock.now()
        after: DueKey | None = None
        firing: set[asyncio.Task[tuple[int, bool]]] = set()
        results: list[tuple[int, bool]] = []
        try:
            while True:
                due = await core.lookups.due(now, after, core.settings.sequences_timer_batch)
                if not due:
                    break
                tail = due[-1].state
                assert tail.due_at is not None
                after = DueKey(tail.due_at, tail.tenant_id, tail.enrollment_id)
                if len(firing) >= PIPELINE:
                    done, firing = await asyncio.wait(firing, return_when=asyncio.FIRST_COMPLETED)
                    results += [task.result() for task in done]
                firing.add(asyncio.create_task(self.fire(due, now)))
            if firing:
                done, firing = await asyncio.wait(firing)
                results += [task.result() for task in done]
        finally:
            for task in firing:
                task.cancel()
        last_seq = max((seq for seq, _ in results), default=0)
        if last_seq:
            await core.runner.wait_until(SEQUENCES.key, last_seq, 30.0)
        return any(deferred for _, deferred in results)

    async def fire(self, due: list[Snapshot], now: datetime) -> tuple[int, bool]:
        core = self.core
        lookups = core.lookups
        states = [s.state for s in due]
        sequences, leads, zones = await asyncio.gather(
            lookups.sequences((s.tenant_id, s.sequence_id) for s in states),
            lookups.leads((s.tenant_id, s.lead_id) for s in states),
            lookups.timezones(s.tenant_id for s in states),
        )
        devices, media = await asyncio.gather(
            lookups.devices((v.tenant_id, v.device_id) for v in leads.values()),
            lookups.media(
                (seq.tenant_id, step.message.media_id)
                for seq in sequences.values()
                for step in seq.steps
                if step.message.media_id
            ),
        )
        by_tenant: dict[str, dict[str, MediaRef]] = {}
        for (tenant, media_id), ref in media.items():
            by_tenant.setdefault(tenant, {})[media_id] = ref
        paused: dict[tuple[str, str], str] = {}
        """(tenant, enrollment) -> the offline device it was paused for."""
        deferred: set[str] = set()

        def decide(state: Enrollment) -> Decision:
            sequence = sequences.get((state.tenant_id, state.sequence_id))
            lead = leads.get((state.tenant_id, state.lead_id))
            if sequence is None or lead is None:
                deferred.add(state.enrollment_id)
                return NOTHING
            around = Surroundings(
                sequence=sequence,
                lead=lead,
                device=devices.get((lead.tenant_id, lead.device_id)),
                timezone=zones[state.tenant_id],
                media=by_tenant.get(state.tenant_id, {}),
                now=now,
            )
            decision = fire(state, around)
            if decision.events and isinstance(decision.events[0], EnrollmentPaused):
                paused[(state.tenant_id, state.enrollment_id)] = lead.device_id
            return decision

        started = time.perf_counter()
        outcome = await core.runs.decide_many(due, decide)
        for state in states:
            if state.due_at is not None:
                LAG.observe(max(0.0, (now - state.due_at).total_seconds()))
        FIRED.inc(len(due))
        log.debug("fired %d due steps in %.3fs", len(due), time.perf_counter() - started)
        if paused:
            await self._resume_if_back(paused)
        if deferred:
            log.warning("%d due enrollments wait for their lead or sequence", len(deferred))
        return outcome.seq, bool(deferred)

    async def _resume_if_back(self, paused: dict[tuple[str, str], str]) -> None:
        """A device that came back while its enrollments were being paused: resume them."""
        core = self.core
        devices = await core.lookups.devices({(t, d) for (t, _), d in paused.items()})
        now = core.clock.now()
        for (tenant, eid), device_id in paused.items():
            view = devices.get((tenant, device_id))
            if view is not None and view.online:
                await core.runs.decide(
                    tenant, eid, lambda s: rules.resume(s, "device_connected", now)
                )

    async def _sleep(self, deferred: bool) -> None:
        core = self.core
        position = core.runner.position(SEQUENCES.key)
        nearest = None if deferred else await core.lookups.next_due()
        waits: list[Awaitable[Any]] = [
            core.runner.wait_until(SEQUENCES.key, position + 1, IDLE_WAKE_SECONDS)
        ]
        if deferred:
            waits.append(asyncio.sleep(DEFERRED_RETRY_SECONDS))
        elif nearest is not None:
            waits.append(core.clock.sleep_until(nearest))
        tasks = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(tasks)
