"""The ban model: WhatsApp bans accounts that send faster than a human would.

Two rules, either one bans: a send less than `min_gap` seconds after the previous send
of the same device ("too_fast"), or more than `max_per_minute` sends within any sliding
60 seconds ("burst"). The send that breaks a rule is refused and the device is banned
for `ban_seconds`.
"""

from __future__ import annotations

from collections import deque

WINDOW_SECONDS = 60.0


class SendWindow:
    """What one device's recent sends look like to the ban model (allocated on first send)."""

    __slots__ = ("last", "times")

    def __init__(self, max_per_minute: int) -> None:
        self.last: float | None = None
        self.times: deque[float] = deque(maxlen=max_per_minute + 1)


class BanModel:
    def __init__(
        self, *, enabled: bool, min_gap: float, max_per_minute: int, ban_seconds: float
    ) -> None:
        self.enabled = enabled
        self.min_gap = min_gap
        self.max_per_minute = max_per_minute
        self.ban_seconds = ban_seconds

    def window(self) -> SendWindow:
        return SendWindow(self.max_per_minute)

    def judge(self, window: SendWindow, t: float) -> str | None:
        """Record a send attempt at monotonic time `t`; the ban reason if it breaks a rule."""
        if not self.enabled:
            return None
        last, window.last = window.last, t
        times = window.times
        times.append(t)
        if last is not None and t - last < self.min_gap:
            return "too_fast"
        if len(times) > self.max_per_minute and t - times[0] < WINDOW_SECONDS:
            return "burst"
        return None

    @staticmethod
    def forgive(window: SendWindow) -> None:
        """A ban wipes the slate: sends after it are judged afresh."""
        window.last = None
        window.times.clear()
