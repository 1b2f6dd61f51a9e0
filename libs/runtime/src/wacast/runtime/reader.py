"""Reading a subject filter of a stream into memory: replay what is stored, then follow.

Services that keep state in memory (a gateway's device directory, its lanes) rebuild it at
start-up from their events and then apply new ones as they come. `SubjectReader` does both
with one ephemeral, unacknowledged pull consumer: `replay()` yields the stored messages up
to the end as of its start and returns; `follow()` goes on with everything stored later.
Nothing is acknowledged and nothing stays on the server after `close()` (the consumer is
deleted, and expires by itself when a process dies).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext


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
        batch: int = 500,
        idle: float = 1.0,
    ) -> None:
        """Read `subject` (wildcards allowed) of `stream` from `start_seq`, from what was
        stored at `start_time` on, or only the last message of each subject with
        `last_per_subject`."""
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
        self._sub: JetStreamContext.PullSubscription | None = None
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
            mem_storage=True,
        )
        self._sub = await self.js.pull_subscribe(
            self.subject, durable=None, stream=self.stream, config=config
        )
        info = await self._sub.consumer_info()
        self._consumer = str(info.name)
        self._pending = int(info.num_pending or 0)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            with contextlib.suppress(Exception):
                await self.js.delete_consumer(self.stream, self._consumer)
            self._sub = None

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
            msgs = await self._fetch()
            if not msgs:
                await self._refresh_pending()
                continue
            yield msgs
            if _pending_after(msgs[-1]) == 0:
                self._pending = 0

    async def _refresh_pending(self) -> None:
        assert self._sub is not None
        info = await self._sub.consumer_info()
        self._pending = int(info.num_pending or 0)

    async def follow(self) -> AsyncIterator[list[Msg]]:
        """Batches of what is stored from now on, forever; [] after each idle wait."""
        while True:
            yield await self._fetch()

    async def _fetch(self) -> list[Msg]:
        assert self._sub is not None, "open() the reader first"
        try:
            msgs = await self._sub.fetch(self.batch, timeout=self.idle)
        except (NatsTimeout, TimeoutError):
            return []
        if msgs:
            self.position = msgs[-1].metadata.sequence.stream
        return msgs


def _pending_after(msg: Msg) -> int:
    return int(msg.metadata.num_pending)
