"""One driver connection: an outbox of encoded frames that its writer sends in batches.

The network pushes frames synchronously (never awaits); the WebSocket writer task drains
the outbox into one message per batch. A driver that stops reading is cut off once its
outbox holds `MAX_OUTBOX` frames, rather than growing the simulator without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque

from wacast.contracts.sim_protocol import Event, encoder

MAX_OUTBOX = 200_000
MAX_BATCH_FRAMES = 2_000
MAX_BATCH_BYTES = 1 << 20


class DriverConnection:
    __slots__ = ("closed", "conn_id", "devices", "outbox", "overflowed", "ready")

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.outbox: deque[bytes] = deque()
        self.ready = asyncio.Event()
        self.closed = False
        self.overflowed = False
        self.devices: set[str] = set()

    def push(self, frame: Event) -> None:
        if self.closed:
            return
        if len(self.outbox) >= MAX_OUTBOX:
            self.overflowed = True
            self.closed = True
        else:
            self.outbox.append(encoder.encode(frame))
        self.ready.set()

    def take_batch(self) -> bytes | None:
        """The next WebSocket message: a JSON array of frames (at most MAX_BATCH_FRAMES,
        and about MAX_BATCH_BYTES unless one frame alone is larger)."""
        outbox = self.outbox
        if not outbox:
            return None
        frames = [outbox.popleft()]
        size = len(frames[0])
        while outbox and len(frames) < MAX_BATCH_FRAMES and size + len(outbox[0]) < MAX_BATCH_BYTES:
            frame = outbox.popleft()
            size += len(frame) + 1
            frames.append(frame)
        return b"[" + b",".join(frames) + b"]"
