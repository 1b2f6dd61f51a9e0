"""Due times: delays from their anchor, moved into send windows in the right timezone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wacast.contracts.values import MessageContent, SendWindow, Step
from wacast.sequence_service.domain.schedule import (
    due_at,
    in_window,
    next_opening,
    resolved,
    zone,
)

MONDAY_9_UTC = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WEEKDAYS_9_TO_12 = SendWindow(days=[0, 1, 2, 3, 4], start_hour=9, end_hour=12)


def step(delay: int, window: SendWindow | None = None) -> Step:
    return Step(id="s", delay_seconds=delay, message=MessageContent(text="hi"), window=window)


def test_without_a_window_a_step_is_due_its_delay_after_the_anchor() -> None:
    assert due_at(MONDAY_9_UTC, step(90), "UTC") == MONDAY_9_UTC + timedelta(seconds=90)


def test_a_due_time_inside_the_window_stays() -> None:
    assert due_at(MONDAY_9_UTC, step(3600, WEEKDAYS_9_TO_12), "UTC") == datetime(
        2030, 1, 7, 10, 0, tzinfo=UTC
    )


def test_after_closing_time_a_step_moves_to_the_next_mornings_opening() -> None:
    due = due_at(MONDAY_9_UTC, step(4 * 3600, WEEKDAYS_9_TO_12), "UTC")
    assert due == datetime(2030, 1, 8, 9, 0, tzinfo=UTC)


def test_a_friday_evening_step_waits_for_monday() -> None:
    friday_evening = datetime(2030, 1, 11, 19, 0, tzinfo=UTC)
    assert next_opening(friday_evening, WEEKDAYS_9_TO_12, "UTC") == datetime(
        2030, 1, 14, 9, 0, tzinfo=UTC
    )


def test_the_window_is_in_the_tenants_timezone() -> None:
    # 09:00 UTC is 06:00 in São Paulo (UTC-3): the window opens at 12:00 UTC.
    assert next_opening(MONDAY_9_UTC, WEEKDAYS_9_TO_12, "America/Sao_Paulo") == datetime(
        2030, 1, 7, 12, 0, tzinfo=UTC
    )


def test_a_window_with_its_own_timezone_ignores_the_tenants() -> None:
    tokyo = SendWindow(days=[0], start_hour=9, end_hour=12, timezone="Asia/Tokyo")
    # Monday 09:00 UTC is Monday 18:00 in Tokyo: next Monday 09:00 Tokyo = 00:00 UTC.
    assert next_opening(MONDAY_9_UTC, tokyo, "America/Sao_Paulo") == datetime(
        2030, 1, 14, 0, 0, tzinfo=UTC
    )


def test_windows_follow_daylight_saving_time() -> None:
    new_york = SendWindow(days=list(range(7)), start_hour=9, end_hour=10)
    before = next_opening(datetime(2030, 3, 9, 15, 0, tzinfo=UTC), new_york, "America/New_York")
    after = next_opening(datetime(2030, 3, 10, 15, 0, tzinfo=UTC), new_york, "America/New_York")
    assert before == datetime(2030, 3, 10, 13, 0, tzinfo=UTC)  # 09:00 EDT (UTC-4)
    assert after == datetime(2030, 3, 11, 13, 0, tzinfo=UTC)
    assert next_opening(datetime(2030, 3, 8, 13, 0, tzinfo=UTC), new_york, "America/New_York") == (
        datetime(2030, 3, 8, 14, 0, tzinfo=UTC)  # still EST (UTC-5) on Friday
    )


def test_a_window_to_midnight_includes_the_last_hour() -> None:
    late = SendWindow(days=[0], start_hour=20, end_hour=24)
    assert in_window(datetime(2030, 1, 7, 23, 59, tzinfo=UTC), late, "UTC")
    assert not in_window(datetime(2030, 1, 8, 0, 0, tzinfo=UTC), late, "UTC")


def test_send_requests_carry_a_concrete_timezone() -> None:
    assert resolved(WEEKDAYS_9_TO_12, "Europe/Lisbon").timezone == "Europe/Lisbon"
    assert resolved(WEEKDAYS_9_TO_12, "").timezone == "UTC"


def test_an_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown timezone"):
        zone("Mars/Olympus_Mons")


@given(
    at=st.datetimes(
        min_value=datetime(2029, 1, 1), max_value=datetime(2032, 1, 1), timezones=st.just(UTC)
    ),
    days=st.sets(st.integers(0, 6), min_size=1),
    hours=st.tuples(st.integers(0, 23), st.integers(1, 24)).filter(lambda h: h[0] < h[1]),
    tz=st.sampled_from(["UTC", "America/Sao_Paulo", "America/New_York", "Asia/Kolkata"]),
)
def test_the_next_opening_is_in_the_window_and_nothing_earlier_is(
    at: datetime, days: set[int], hours: tuple[int, int], tz: str
) -> None:
    window = SendWindow(days=sorted(days), start_hour=hours[0], end_hour=hours[1])
    opening = next_opening(at, window, tz)
    assert opening >= at
    assert in_window(opening, window, tz)
    local = opening.astimezone(zone(tz))
    assert local.weekday() in days
    earlier = opening - timedelta(minutes=1)
    assert opening == at or earlier < at or not in_window(earlier, window, tz)
