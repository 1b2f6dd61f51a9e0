"""Writing sessions in atomic batches: many devices' objects, one disk write.

An object store `put` is two writes (its chunk, then its meta) and a read; thousands of
devices linking at once (or a gateway stopping with their sessions still to write) would
wait on the disk one write at a time. Here each session of one chunk becomes a chunk and a
meta message in the object store's own layout (readers see ordinary objects), and waiting
sessions are committed together in one atomic batch. A replaced object's old chunk is purged
afterwards (a crash in between leaves an orphan chunk, never a broken object).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.js.errors import NotFoundError

from wacast.runtime.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CHUNK = 128 * 1024
"""The object store's chunk size: bigger sessions take the object store's own `put`."""
BATCH_BYTES = 1024 * 1024
BATCH_SESSIONS = 400


def digest(data: bytes) -> str:
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()


class SessionWriter:
    def __init__(self, nc: Client, bucket: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.bucket = bucket
        self.stream = f"OBJ_{bucket}"
        self._waiting: dict[str, tuple[bytes, list[asyncio.Future[None]]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Let the bucket's stream take atomic batches."""
        info = await self.js.stream_info(self.stream)
        if not info.config.allow_atomic:
            info.config.allow_atomic = True
            await self.js.update_stream(info.config)
        self._task = asyncio.create_task(self._run(), name="session-writer")

    def meta_subject(self, name: str) -> str:
        return f"$O.{self.bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"

    async def put(self, name: str, data: bytes) -> None:
        """Store `data` as object `name`; returns once it is stored (a later put of the
        same name while this one waits replaces it: both return when the later is stored)."""
        if len(data) > CHUNK or self._task is None:
            raise ValueError("write big sessions with the object store's put")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _, futures = self._waiting.pop(name, (b"", []))
        self._waiting[name] = (data, [*futures, done])
        self._wake.set()
        await done

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: dict[str, tuple[bytes, list[asyncio.Future[None]]]] = {}
            size = 0
            for name in list(self._waiting):
                if len(batch) >= BATCH_SESSIONS or size >= BATCH_BYTES:
                    break
                batch[name] = self._waiting.pop(name)
                size += len(batch[name][0])
            try:
                await self._commit({name: data for name, (data, _) in batch.items()})
            except Exception as exc:
                for _, futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
            else:
                for _, futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_result(None)

    async def _commit(self, sessions: dict[str, bytes]) -> None:
        olds = await asyncio.gather(*(self._old_nuid(name) for name in sessions))
        batch_id = uuid.uuid4().hex
        messages: list[tuple[str, bytes, dict[str, str]]] = []
        now = datetime.now(UTC).isoformat()
        for name, data in sessions.items():
            nuid = uuid.uuid4().hex
            meta = {
                "name": name, "bucket": self.bucket, "nuid": nuid, "size": len(data),
                "chunks": 1, "digest": digest(data), "mtime": now,
                "options": {"max_chunk_size": CHUNK},
            }  # fmt: skip
            messages.append((f"$O.{self.bucket}.C.{nuid}", data, {}))
            messages.append(
                (self.meta_subject(name), json.dumps(meta).encode(), {"Nats-Rollup": "sub"})
            )
        last = len(messages) - 1
        for i, (subject, payload, headers) in enumerate(messages):
            hdrs = {**headers, "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(i + 1)}
            if i < last:
                await self.nc.publish(subject, payload, headers=hdrs)
                continue
            hdrs["Nats-Batch-Commit"] = "1"
            reply = await self.nc.request(subject, payload, headers=hdrs, timeout=10.0)
            error = (json.loads(reply.data or b"{}") or {}).get("error")
            if error:
                raise RuntimeError(f"session batch refused: {error}")
        for old in olds:
            if old is not None:
                with contextlib.suppress(Exception):
                    await self.js.purge_stream(self.stream, subject=f"$O.{self.bucket}.C.{old}")

    async def _old_nuid(self, name: str) -> str | None:
        try:
            msg = await self.js.get_last_msg(self.stream, self.meta_subject(name), direct=True)
        except NotFoundError:
            return None
        info = json.loads(msg.data or b"{}")
        return None if info.get("deleted") else str(info.get("nuid") or "") or None

    async def close(self, drain: float = 10.0) -> None:
        """Store what waits (for at most `drain` seconds), then stop."""
        futures = [f for _, fs in self._waiting.values() for f in fs]
        if futures:
            await asyncio.wait(futures, timeout=drain)
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
