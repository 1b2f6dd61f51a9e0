"""Reading a subject filter of a stream into memory: replay what is stored, then follow.

Services that keep state in memory (a gateway's device directory, its lanes) rebuild it at
start-up from their events and then apply new ones as they come. `SubjectReader` does both
with one ephemeral, unacknowledged pull consumer read through a plain subscription (the
projection runner's `_Pull`: nats-py's `fetch` costs more per message than decoding it):
`replay()` yields the stored messages up to the end as of its start and returns; `follow()`
goes on with everything stored later. Nothing is acknowledged and nothing stays on the
server after `close()` (the consumer is deleted, and expires by itself when a process dies).
`position(msg)` is a delivered message's stream sequence, read cheaply from its reply
subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from wacast.runtime.projection import PullFailed, _ack_position, _Pull

log = logging.getLogger(__name__)


def position(msg: Msg) -> int:
    """Stream sequence of a message delivered by a reader."""
    return _ack_position(msg)[0]


class SubjectReader:
    def __init__(
        self,
        nc: Client,
        stream: str,
        subject: str,
        *,
        start_seq: int = 1,
        start_time: datetime | None = None,
        last_per_subject: bool = False,
        batch: int = 1000,
        idle: float = 1.0,
    ) -> None:
        """Read `subject` (wildcards allowed) of `stream` from `start_seq`, from what was
        stored at `start_time` on, or only the last message of each subject with
        `last_per_subject`."""
        self.nc = nc
        self.js = nc.jetstream()
        self.stream = stream
        self.subject = subject
        self.start_seq = max(1, start_seq)
        self.start_time = start_time
        self.last_per_subject = last_per_subject
        self.batch = batch
        self.idle = idle
        self.position = 0
        """Stream sequence of the last message read."""
        self._pull: _Pull | None = None
        self._pending = 0
        self._consumer = ""

    async def open(self) -> None:
        policy: dict[str, Any]
        if self.last_per_subject:
            policy = {"deliver_policy": DeliverPolicy.LAST_PER_SUBJECT}
        elif self.start_time is not None:
            policy = {
                "deliver_policy": DeliverPolicy.BY_START_TIME,
                "opt_start_time": self.start_time,
            }
        else:
            policy = {
                "deliver_policy": DeliverPolicy.BY_START_SEQUENCE,
                "opt_start_seq": self.start_seq,
            }
        config = ConsumerConfig(
            **policy,
            ack_policy=AckPolicy.NONE,
            filter_subject=self.subject,
            inactive_threshold=60.0,
            max_waiting=1,
            mem_storage=True,
        )
        info = await self.js.add_consumer(self.stream, config)
        self._consumer = str(info.name)
        self._pending = int(info.num_pending or 0)
        self._pull = _Pull(self.nc, self.stream, self._consumer, self.batch, self.idle)
        await self._pull.start()

    async def close(self) -> None:
        if self._pull is not None:
            with contextlib.suppress(Exception):
                await self._pull.stop()
            with contextlib.suppress(Exception):
                await self.js.delete_consumer(self.stream, self._consumer)
            self._pull = None

    async def __aenter__(self) -> SubjectReader:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def replay(self) -> AsyncIterator[list[Msg]]:
        """Batches of what was stored when the reader opened, then stop."""
        while self._pending > 0:
            msgs = await self._next()
            if not msgs:
                info = await self.js.consumer_info(self.stream, self._consumer)
                self._pending = int(info.num_pending or 0)
                continue
            yield msgs
            if _ack_position(msgs[-1])[1] == 0:
                self._pending = 0

    async def follow(self) -> AsyncIterator[list[Msg]]:
        """Batches of what is stored from now on, forever; [] after each idle wait."""
        while True:
            yield await self._next()

    async def _next(self) -> list[Msg]:
        assert self._pull is not None, "open() the reader first"
        try:
            msgs = await self._pull.next_batch()
        except (PullFailed, TimeoutError, nats.errors.Error) as exc:
            if self.last_per_subject:
                raise
            log.warning(
                "reading %s failed (%s); resuming after %s", self.subject, exc, self.position
            )
            await self._resume()
            return []
        if msgs:
            self.position = position(msgs[-1])
        return msgs

    async def _resume(self) -> None:
        """A new consumer from the message after the last one read (a slow process can lose
        its pull request; the server may have dropped the consumer)."""
        await self.close()
        if self.position:
            self.start_seq, self.start_time = self.position + 1, None
        while True:
            try:
                await self.open()
                return
            except (TimeoutError, nats.errors.Error) as exc:
                log.warning("reopening %s failed (%s); trying again", self.subject, exc)
                await asyncio.sleep(1.0)
