"""Group commit: many concurrent single appends, stored as atomic batches.

On a durable server every publish is a disk write, so a process that appends one event at
a time from thousands of aggregates (a gateway's lanes, say) is bound by the disk, not by
its CPU. `Coalescer.append` looks like one append (same expected sequence and message id
checks, same result) but joins whatever else is waiting for the same stream into one atomic
batch: one round trip and one write for all of them.

If the batch is refused (one item's expected sequence is stale, or one message id is
stored already), nothing of it was stored, and each item is appended again on its own, so
only the item at fault gets its `Conflict`; the others succeed as if alone.

A batch whose acknowledgement did not come back (408), or that was refused for holding a
message id stored already (an earlier attempt's acknowledgement was lost), may well be
stored: the subjects' last messages are read back first, and a group whose last message id
is found there is done (`duplicate`, with its stored sequence). Only the others are
appended again, so a lost acknowledgement never turns into a `Conflict` of one's own append.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from wacast.contracts.streams import BY_KIND
from wacast.runtime.eventstore import (
    MAX_BATCH,
    Append,
    Appended,
    AppendFailed,
    Conflict,
    DuplicateInBatch,
    EventStore,
)
from wacast.runtime.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class _Waiting:
    items: list[Append]
    """Stored together and in order (e.g. several events of one aggregate)."""
    done: asyncio.Future[Appended] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Coalescer:
    def __init__(self, store: EventStore, *, max_batch: int = MAX_BATCH, flushers: int = 4) -> None:
        """`flushers` batches of one stream may be in flight at once."""
        self.store = store
        self.max_batch = max_batch
        self.flushers = flushers
        self._queues: dict[str, list[_Waiting]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._outstanding: set[asyncio.Future[Appended]] = set()

    async def append(self, item: Append) -> Appended:
        """Append one event to its subject, in a batch with whatever else is waiting."""
        return await self.append_group([item])

    async def append_group(self, items: list[Append]) -> Appended:
        """Append events of one stream together and in order (all or none); the result is
        the last one's (the others' sequences precede it one by one)."""
        if not 0 < len(items) <= self.max_batch:
            raise ValueError(f"a group holds 1 to {self.max_batch} appends")
        stream = BY_KIND[items[0].event.subject_kind].key
        waiting = _Waiting(list(items))
        self._outstanding.add(waiting.done)
        waiting.done.add_done_callback(self._outstanding.discard)
        queue = self._queues.get(stream)
        if queue is None:
            queue = self._start(stream)
        queue.append(waiting)
        self._wake[stream].set()
        return await waiting.done

    def _start(self, stream: str) -> list[_Waiting]:
        queue: list[_Waiting] = []
        self._queues[stream] = queue
        self._wake[stream] = asyncio.Event()
        for n in range(self.flushers):
            task = asyncio.create_task(self._flush(stream), name=f"coalescer-{stream}-{n}")
            self._tasks.append(task)
        return queue

    async def _flush(self, stream: str) -> None:
        queue, wake = self._queues[stream], self._wake[stream]
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            batch: list[_Waiting] = []
            size = 0
            while queue and size + len(queue[0].items) <= self.max_batch:
                size += len(queue[0].items)
                batch.append(queue.pop(0))
            await self._commit(batch)

    async def _commit(self, batch: list[_Waiting]) -> None:
        if len(batch) > 1 and _batchable(batch):
            try:
                appended = await self.store.append_batch([i for w in batch for i in w.items])
            except (Conflict, AppendFailed) as exc:
                if _may_be_stored(exc):
                    batch = await self._unstored(batch)
                # refused: nothing of it was stored; find the one at fault below
            except Exception as exc:
                for waiting in batch:
                    _fail(waiting, exc)
                return
            else:
                seq = appended.seq - sum(len(w.items) for w in batch)
                for waiting in batch:
                    seq += len(waiting.items)
                    if not waiting.done.done():
                        waiting.done.set_result(Appended(appended.stream, seq))
                return
        await asyncio.gather(*(self._alone(w) for w in batch))

    async def _unstored(self, batch: list[_Waiting]) -> list[_Waiting]:
        """Settle the groups found stored (each group's last message id is its subject's
        last); return the others."""
        spec = BY_KIND[batch[0].items[0].event.subject_kind]
        try:
            found = await self.store.last_of(spec, [w.items[-1].subject for w in batch])
        except Exception as exc:
            log.warning("reading back a batch without acknowledgement failed: %s", exc)
            return batch
        left: list[_Waiting] = []
        stream = spec.name(self.store.topology)
        for waiting in batch:
            last = waiting.items[-1]
            stored = found.get(last.subject)
            if stored is not None and stored.msg_id == last.msg_id:
                if not waiting.done.done():
                    waiting.done.set_result(Appended(stream, stored.seq, duplicate=True))
            else:
                left.append(waiting)
        return left

    async def _alone(self, waiting: _Waiting) -> None:
        try:
            result = await self.store.append_batch(waiting.items)
        except Exception as exc:
            if _may_be_stored(exc) and not await self._unstored([waiting]):
                return
            _fail(waiting, exc)
        else:
            if not waiting.done.done():
                waiting.done.set_result(result)

    async def close(self, drain: float = 5.0) -> None:
        """Store what is waiting (for at most `drain` seconds), then stop."""
        if self._outstanding:
            await asyncio.wait(list(self._outstanding), timeout=drain)
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        for queue in self._queues.values():
            for left in queue:
                left.done.cancel()
            queue.clear()
        self._queues.clear()
        self._wake.clear()


def _batchable(batch: list[_Waiting]) -> bool:
    """An append that expects a subject's last sequence cannot share a batch with another
    group's append to that subject (it would see the other's)."""
    groups: dict[str, set[int]] = {}
    expecting: set[str] = set()
    for n, waiting in enumerate(batch):
        for item in waiting.items:
            groups.setdefault(item.subject, set()).add(n)
            if item.expected is not None:
                expecting.add(item.subject)
    return all(len(groups[subject]) == 1 for subject in expecting)


def _may_be_stored(exc: BaseException) -> bool:
    """Was the batch perhaps stored after all (no answer, or an earlier attempt was)?"""
    return isinstance(exc, DuplicateInBatch) or (isinstance(exc, AppendFailed) and exc.code == 408)


def _fail(waiting: _Waiting, exc: BaseException) -> None:
    if not waiting.done.done():
        waiting.done.set_exception(exc)
