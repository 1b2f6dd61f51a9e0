"""When a step falls due: its delay, then its send window in the tenant's timezone.

A step is due `delay_seconds` after its anchor (the enrollment for the first step, the
moment the previous step was sent for the others). A due time outside the step's window
moves to the window's next opening; windows are wall-clock hours on weekdays in the
window's own timezone, or the tenant's when it names none.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wacast.contracts.values import SendWindow, Step

DEFAULT_TIMEZONE = "UTC"


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError when there is none of that name."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


def resolved(window: SendWindow, tenant_timezone: str) -> SendWindow:
    """The window with its timezone made concrete, as a send request carries it."""
    if window.timezone:
        return window
    return SendWindow(
        days=window.days,
        start_hour=window.start_hour,
        end_hour=window.end_hour,
        timezone=tenant_timezone or DEFAULT_TIMEZONE,
    )


def _at(day: date, hour: int, tz: ZoneInfo) -> datetime:
    if hour == 24:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return datetime.combine(day, time(hour), tzinfo=tz)


def next_opening(at: datetime, window: SendWindow, tenant_timezone: str) -> datetime:
    """The earliest instant at or after `at` inside `window` (in UTC)."""
    tz = zone(window.timezone or tenant_timezone)
    today = at.astimezone(tz).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        start, end = _at(day, window.start_hour, tz), _at(day, window.end_hour, tz)
        if at < end:
            return max(at, start).astimezone(UTC)
    raise AssertionError("a window with at least one day opens within a week")


def in_window(at: datetime, window: SendWindow | None, tenant_timezone: str) -> bool:
    return window is None or next_opening(at, window, tenant_timezone) == at.astimezone(UTC)


def due_at(anchor: datetime, step: Step, tenant_timezone: str) -> datetime:
    """When `step` falls due, counted from `anchor`."""
    due = (anchor + timedelta(seconds=step.delay_seconds)).astimezone(UTC)
    if step.window is None:
        return due
    return next_opening(due, step.window, tenant_timezone)
