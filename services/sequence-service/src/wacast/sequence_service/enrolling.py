"""Enrolling leads: each at most once at a time per sequence, in atomic batches.

The enrollment id is derived from sequence, lead and `nth`, and its subject's first
append expects sequence 0, so two racing enrollments of one lead cannot both start. A lead
enrolls again (`nth` + 1) only once its latest enrollment has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from wacast.contracts import ids
from wacast.contracts.subjects import Topology
from wacast.runtime.eventstore import Append, Conflict, DuplicateInBatch, EventStore
from wacast.sequence_service.adapters.lookups import Lookups
from wacast.sequence_service.domain.enrollment import start
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.views import LeadView
from wacast.sequence_service.enrollments import REFUSED, EnrollmentStore

PER_BATCH = 500
"""Enrollments per atomic batch (two events each)."""
IN_FLIGHT = 2
"""Atomic batches appended at once (each holds different leads)."""
Source = Literal["api", "trigger"]


@dataclass
class Enrolled:
    enrolled: list[str] = field(default_factory=list)
    """Lead ids enrolled now."""
    already: list[str] = field(default_factory=list)
    """Lead ids with a running enrollment in the sequence."""
    seq: int = 0


class Enroller:
    def __init__(
        self, store: EventStore, topology: Topology, lookups: Lookups, runs: EnrollmentStore
    ) -> None:
        self.store = store
        self.topology = topology
        self.lookups = lookups
        self.runs = runs

    async def enroll(
        self, sequence: Sequence, leads: Seq[LeadView], source: Source, now: datetime
    ) -> Enrolled:
        """Enroll `leads` (reachable, with a device) that are not in the sequence now."""
        result = Enrolled()
        tenant = sequence.tenant_id
        latest = await self.lookups.latest(tenant, sequence.sequence_id, [v.lead_id for v in leads])
        timezone = (await self.lookups.timezones([tenant]))[tenant]
        plans: list[tuple[LeadView, int]] = []
        for lead in {v.lead_id: v for v in leads}.values():
            snap = latest.get(lead.lead_id)
            if snap is not None and snap.state.running:
                result.already.append(lead.lead_id)
            else:
                plans.append((lead, 1 if snap is None else snap.state.nth + 1))
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def append(chunk: list[tuple[LeadView, int]]) -> None:
            async with gate:
                items = [
                    item
                    for lead, nth in chunk
                    for item in self._items(sequence, lead, nth, source, now, timezone)
                ]
                try:
                    appended = await self.store.append_batch(items)
                except REFUSED:
                    for lead, nth in chunk:
                        await self._one(sequence, lead, nth, source, now, timezone, result)
                    return
                result.enrolled += [lead.lead_id for lead, _ in chunk]
                result.seq = max(result.seq, appended.seq)

        await asyncio.gather(
            *(append(plans[i : i + PER_BATCH]) for i in range(0, len(plans), PER_BATCH))
        )
        return result

    def _items(
        self,
        sequence: Sequence,
        lead: LeadView,
        nth: int,
        source: Source,
        now: datetime,
        timezone: str,
    ) -> list[Append]:
        events = start(
            sequence,
            lead_id=lead.lead_id,
            device_id=lead.device_id,
            nth=nth,
            source=source,
            now=now,
            timezone=timezone,
        )
        eid = ids.enrollment_id(sequence.sequence_id, lead.lead_id, nth)
        subject = self.topology.enrollment(sequence.tenant_id, eid)
        msg_id = f"{sequence.tenant_id}.{eid}.start"
        return [
            Append(subject, event, f"{msg_id}.{i}", 0 if i == 0 else None)
            for i, event in enumerate(events)
        ]

    async def _one(
        self,
        sequence: Sequence,
        lead: LeadView,
        nth: int,
        source: Source,
        now: datetime,
        timezone: str,
        result: Enrolled,
    ) -> None:
        while True:
            items = self._items(sequence, lead, nth, source, now, timezone)
            try:
                appended = await self.store.append_batch(items)
            except (Conflict, DuplicateInBatch):
                eid = ids.enrollment_id(sequence.sequence_id, lead.lead_id, nth)
                found = await self.runs.load(sequence.tenant_id, eid)
                if found is not None and found.state.running:
                    result.already.append(lead.lead_id)
                    return
                nth += 1
                continue
            result.enrolled.append(lead.lead_id)
            result.seq = max(result.seq, appended.seq)
            return
