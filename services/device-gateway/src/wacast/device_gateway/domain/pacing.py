"""Timing rules of a lane: the random gap, typing time, retry backoff and send windows."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from wacast.contracts.values import Pacing, RetryPolicy, SendWindow
from wacast.device_gateway.domain.limits import zone


def draw_gap(pacing: Pacing, rng: random.Random, guard: float) -> float:
    """Seconds between two sends, uniform in [min, max].

    The draw keeps `guard` seconds (at most a quarter of the range) off both ends, so the
    few milliseconds between our clock and the network's cannot push a gap out of range.
    """
    low, high = pacing.min_seconds, pacing.max_seconds
    margin = min(guard, (high - low) / 4)
    return rng.uniform(low + margin, high - margin)


def typing_seconds(text: str, pacing: Pacing, gap: float, per_char: float, cap: float) -> float:
    """'typing…' grows with the text, bounded by `cap` and by the gap it has to fit in;
    none at all when the pacing allows no gap (full-speed runs)."""
    if pacing.max_seconds <= 0:
        return 0.0
    return max(0.0, min(len(text) * per_char, cap, gap))


def retry_delay(policy: RetryPolicy, next_attempt: int) -> float:
    """Attempt n (n >= 2) waits `backoff_seconds * 2 ** (n - 2)` after the failure."""
    return float(policy.backoff_seconds * 2 ** max(0, next_attempt - 2))


def window_open(window: SendWindow | None, at: datetime, default_zone: str = "UTC") -> bool:
    """`default_zone` places a window without a timezone of its own (the tenant's)."""
    if window is None:
        return True
    local = at.astimezone(_zone(window, default_zone))
    return local.weekday() in window.days and window.start_hour <= local.hour < window.end_hour


def window_opens(window: SendWindow, at: datetime, default_zone: str = "UTC") -> datetime:
    """The next moment from `at` on when `window` is open (`at` itself when it is)."""
    zone = _zone(window, default_zone)
    local = at.astimezone(zone)
    for days_ahead in range(8):
        day = (local + timedelta(days=days_ahead)).date()
        if day.weekday() not in window.days:
            continue
        start = datetime(day.year, day.month, day.day, window.start_hour, tzinfo=zone)
        end = start + timedelta(hours=window.end_hour - window.start_hour)
        if local < end:
            return max(start, local).astimezone(at.tzinfo)
    raise ValueError(f"send window {window} never opens")


def _zone(window: SendWindow, default_zone: str) -> ZoneInfo:
    return zone(window.timezone or default_zone)
