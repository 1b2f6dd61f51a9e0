"""The `sequence.progress` query, answered from the private tables.

The report-service keeps the public read model; this answer is the owner's own view, for
tools and tests. `after_seq` (a command reply's `seq`) waits until the tables hold it.
"""

from __future__ import annotations

import msgspec

from wacast.contracts.base import Reply
from wacast.contracts.streams import SEQUENCES
from wacast.runtime.commands import problem
from wacast.sequence_service.core import Core

PROGRESS_QUERY = "sequence.progress"
ENDED = ("completed", "failed", "removed")


class ProgressQuery(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    sequence_id: str
    after_seq: int = 0


class SequenceProgress(msgspec.Struct, frozen=True, kw_only=True):
    """`percentage`: share of enrollments that ended (completed, failed or removed)."""

    sequence_id: str
    status: str
    steps: int
    enrolled: int = 0
    active: int = 0
    paused: int = 0
    completed: int = 0
    failed: int = 0
    removed: int = 0
    messages_sent: int = 0
    percentage: float = 0.0


class Progress:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def answer(self, query: ProgressQuery) -> SequenceProgress | Reply:
        core = self.core
        if query.after_seq:
            await core.runner.wait_until(
                SEQUENCES.key, query.after_seq, core.settings.sequences_read_timeout
            )
        key = (query.tenant_id, query.sequence_id)
        sequence = (await core.lookups.sequences([key])).get(key)
        if sequence is None:
            return problem("sequence_not_found", "No such sequence", 404, query.sequence_id)
        counts = await core.lookups.progress(*key)
        enrolled = sum(counts.get(s, 0) for s in ("active", "paused", *ENDED))
        ended = sum(counts.get(s, 0) for s in ENDED)
        return SequenceProgress(
            sequence_id=sequence.sequence_id,
            status=sequence.status,
            steps=len(sequence.steps),
            enrolled=enrolled,
            active=counts.get("active", 0),
            paused=counts.get("paused", 0),
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0),
            removed=counts.get("removed", 0),
            messages_sent=counts.get("messages_sent", 0),
            percentage=round(100.0 * ended / enrolled, 1) if enrolled else 0.0,
        )
