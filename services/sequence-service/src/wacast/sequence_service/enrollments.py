"""Appending enrollment decisions: against a snapshot, in bulk, safe under races.

A decision is taken on an enrollment's snapshot from the private table and appended with
the snapshot's sequence as the expected last sequence of the enrollment's subject. If the
table was behind, or another writer got there first, the append is refused; the state is
then replayed from the stream and the decision taken again. Send requests and send controls
go first: a request to a subject of its own with expected sequence 0, so a decision repeated
after a crash finds it stored and goes on (a step is requested at most once); a control
(hold, release, withdrawal) to the enrollment's `sendctl` subject unless the last control
there is of its kind already, with a message id made of that subject's last sequence, so a
decision repeated on a fresh snapshot, or taken twice at once, stores it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wacast.contracts.base import Event
from wacast.contracts.sequences import EnrollmentEventBase
from wacast.contracts.streams import MESSAGES, SEQUENCES
from wacast.contracts.subjects import Topology
from wacast.runtime.eventstore import (
    MAX_BATCH,
    Append,
    AppendFailed,
    Conflict,
    DuplicateInBatch,
    EventStore,
)
from wacast.sequence_service.adapters.lookups import Lookups, Snapshot
from wacast.sequence_service.domain.enrollment import Decision, Enrollment, replay

log = logging.getLogger("wacast.sequences.enrollments")

Decide = Callable[[Enrollment], Decision]
REFUSED = (Conflict, DuplicateInBatch, AppendFailed)
"""A batch refused for any of these is retried one enrollment at a time."""
ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class Outcome:
    seq: int = 0
    """Stream sequence of the last enrollment event appended (0: none)."""
    changed: int = 0
    """Enrollments that got events."""


class EnrollmentStore:
    def __init__(self, store: EventStore, topology: Topology, lookups: Lookups) -> None:
        self.store = store
        self.topology = topology
        self.lookups = lookups

    async def load(self, tenant_id: str, enrollment_id: str) -> Snapshot | None:
        """The enrollment replayed from its subject (the truth, when the table is behind)."""
        stored = await self.store.load(
            SEQUENCES, self.topology.enrollment(tenant_id, enrollment_id)
        )
        events = [s.event for s in stored if isinstance(s.event, EnrollmentEventBase)]
        state = replay(events)
        return None if state is None else Snapshot(state, stored[-1].seq)

    async def decide(
        self,
        tenant_id: str,
        enrollment_id: str,
        decide: Decide,
        snapshot: Snapshot | None = None,
    ) -> Outcome:
        """Decide on one enrollment and append, deciding again on a fresh state if refused."""
        snap = snapshot or await self.lookups.enrollment(tenant_id, enrollment_id)
        if snap is None:
            snap = await self.load(tenant_id, enrollment_id)
        for attempt in range(ATTEMPTS):
            if snap is None:
                return Outcome()
            decision = decide(snap.state)
            if not decision:
                return Outcome()
            try:
                return await self._append(snap, decision)
            except (Conflict, DuplicateInBatch):
                await asyncio.sleep(0.005 * 2**attempt)
                snap = await self.load(tenant_id, enrollment_id)
        raise Conflict(self.topology.enrollment(tenant_id, enrollment_id), None, "kept racing")

    async def decide_many(self, snapshots: Sequence[Snapshot], decide: Decide) -> Outcome:
        """Decide on many enrollments; append in atomic batches, one by one when refused."""
        decided = [(snap, decide(snap.state)) for snap in snapshots]
        await self._append_messages([d for _, d in decided])
        decided = [(snap, d) for snap, d in decided if d.events]
        seq = changed = 0
        for chunk in _chunks(decided):
            items = [
                item for snap, decision in chunk for item in self._items(snap, decision.events)
            ]
            try:
                appended = await self.store.append_batch(items)
            except REFUSED as exc:
                log.info("a batch of %d decisions was refused (%s); one by one", len(chunk), exc)
                for snap, _ in chunk:
                    state = snap.state
                    one = await self.decide(state.tenant_id, state.enrollment_id, decide, snap)
                    seq, changed = max(seq, one.seq), changed + one.changed
                continue
            seq, changed = max(seq, appended.seq), changed + len(chunk)
        return Outcome(seq, changed)

    async def _append(self, snap: Snapshot, decision: Decision) -> Outcome:
        await self._append_messages([decision])
        if not decision.events:
            return Outcome()
        state = snap.state
        appended = await self.store.append(
            self.topology.enrollment(state.tenant_id, state.enrollment_id),
            decision.events,
            msg_id=f"{state.tenant_id}.{state.enrollment_id}.{snap.seq}",
            expected=snap.seq,
        )
        return Outcome(appended.seq, 1)

    def _items(self, snap: Snapshot, events: list[Event]) -> list[Append]:
        state = snap.state
        subject = self.topology.enrollment(state.tenant_id, state.enrollment_id)
        msg_id = f"{state.tenant_id}.{state.enrollment_id}.{snap.seq}"
        return [
            Append(subject, event, f"{msg_id}.{i}", snap.seq if i == 0 else None)
            for i, event in enumerate(events)
        ]

    async def _append_messages(self, decisions: Sequence[Decision]) -> None:
        """Send requests, each once for good (expected sequence 0), and send controls."""
        controls = [d.control for d in decisions if d.control is not None]
        last = await self.store.last_of(MESSAGES, [c.subject(self.topology) for c in controls])
        items: list[Append] = []
        for d in decisions:
            if d.control is not None:
                subject = d.control.subject(self.topology)
                found = last.get(subject)
                if found is None or type(found.event) is not type(d.control):
                    seq = found.seq if found else 0
                    items.append(Append(subject, d.control, f"{subject}.{seq}", None))
            if d.request is not None:
                subject = d.request.subject(self.topology)
                items.append(Append(subject, d.request, subject, 0))
        for start in range(0, len(items), MAX_BATCH):
            chunk = items[start : start + MAX_BATCH]
            try:
                await self.store.append_batch(chunk)
            except REFUSED:
                for item in chunk:
                    await self._append_once(item)

    async def _append_once(self, item: Append) -> None:
        with contextlib.suppress(Conflict):  # stored already: the subject is the message id
            await self.store.append(
                item.subject, [item.event], msg_id=item.msg_id, expected=item.expected
            )


def _chunks(
    decided: list[tuple[Snapshot, Decision]],
) -> list[list[tuple[Snapshot, Decision]]]:
    """Decisions grouped so that no atomic batch holds more than MAX_BATCH events."""
    chunks: list[list[tuple[Snapshot, Decision]]] = []
    size = 0
    for pair in decided:
        n = len(pair[1].events)
        if not chunks or size + n > MAX_BATCH:
            chunks.append([])
            size = 0
        chunks[-1].append(pair)
        size += n
    return chunks
