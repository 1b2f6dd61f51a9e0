"""Daily send caps and the warm-up ramp, counted in local days of the tenant's timezone."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wacast.contracts.devices import WARMUP_RAMP


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (UTC when empty or unknown to this machine)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_day(at: datetime, tz: str) -> date:
    return at.astimezone(zone(tz)).date()


def next_midnight(at: datetime, tz: str) -> datetime:
    """The start of the local day after the one `at` falls on."""
    return day_start(local_day(at, tz) + timedelta(days=1), tz, at)


def day_start(day: date, tz: str, like: datetime) -> datetime:
    """Local midnight of `day` (the first moment of it, should a clock change skip
    midnight), in `like`'s timezone."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    return start.astimezone(like.tzinfo)


def daily_cap(
    own_cap: int | None,
    tenant_cap: int | None,
    warmup: bool,
    first_paired: date | None,
    today: date,
) -> int | None:
    """Sends a device may make on `today` (None: no cap).

    Its own cap, else the tenant's default; with warm-up, no more than the ramp's step for
    the number of local days since it was first paired (day 0 is the pairing day).
    """
    cap = own_cap if own_cap is not None else tenant_cap
    if not warmup or first_paired is None:
        return cap
    days = max(0, (today - first_paired).days)
    if days >= len(WARMUP_RAMP):
        return cap
    ramp = WARMUP_RAMP[days]
    return ramp if cap is None else min(cap, ramp)
