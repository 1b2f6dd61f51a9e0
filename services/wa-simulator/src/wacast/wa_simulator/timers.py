"""One heap of timers served by one task: receipts, QR rotations, pair delays, send results.

Ten thousand devices must not mean ten thousand sleeping tasks. Everything the simulator
does later is a plain callback on this heap; `run()` sleeps until the earliest one is due.
Cancelled timers stay in the heap and are skipped when they come up (lazy deletion).
The clock is injectable so unit tests drive time by hand with `fire_due(now)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Timer:
    __slots__ = ("args", "callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.due = due
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.args = ()


class Timers:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._wake: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        return self.call_at(self.clock() + max(0.0, delay), callback, *args)

    def call_at(self, due: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(due, callback, args)
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (due, next(self._seq), timer))
        if self._wake is not None and (earliest is None or due < earliest):
            self._wake.set()
        return timer

    def next_due(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def fire_due(self, now: float | None = None) -> int:
        """Run every timer due at `now` (default: the clock), in due order; returns how many."""
        now = self.clock() if now is None else now
        fired = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            timer.cancelled = True
            fired += 1
            try:
                timer.callback(*timer.args)
            except Exception:
                log.exception("timer callback %s failed", getattr(timer.callback, "__name__", "?"))
        return fired

    async def run(self) -> None:
        """Serve the heap until cancelled."""
        self._wake = wake = asyncio.Event()
        try:
            while True:
                self.fire_due()
                due = self.next_due()
                wake.clear()
                if due is None:
                    await wake.wait()
                    continue
                delay = due - self.clock()
                if delay <= 0:
                    # Let other tasks run between bursts of due timers.
                    await asyncio.sleep(0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
        finally:
            self._wake = None
