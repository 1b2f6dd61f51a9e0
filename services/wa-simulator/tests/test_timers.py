"""The timer heap: order, cancellation, failing callbacks, and the serving task."""

from __future__ import annotations

import asyncio
import time

from wacast.wa_simulator.timers import Timers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_timers_fire_in_due_order_and_ties_in_scheduling_order() -> None:
    clock = Clock()
    timers = Timers(clock)
    fired: list[str] = []
    timers.call_later(3, fired.append, "c")
    timers.call_later(1, fired.append, "a1")
    timers.call_later(1, fired.append, "a2")
    timers.call_later(2, fired.append, "b")
    assert timers.fire_due(100.5) == 0
    assert timers.fire_due(102.0) == 3
    assert fired == ["a1", "a2", "b"]
    assert timers.next_due() == 103.0


def test_cancelled_timers_never_fire_and_a_failing_callback_does_not_stop_the_others() -> None:
    clock = Clock()
    timers = Timers(clock)
    fired: list[int] = []

    def boom() -> None:
        raise RuntimeError("boom")

    cancelled = timers.call_later(1, fired.append, 1)
    timers.call_later(1, boom)
    timers.call_later(2, fired.append, 2)
    cancelled.cancel()
    assert timers.fire_due(105) == 2
    assert fired == [2]
    assert timers.next_due() is None


def test_a_callback_may_schedule_more_work() -> None:
    clock = Clock()
    timers = Timers(clock)
    seen: list[float] = []

    def tick(n: int) -> None:
        seen.append(clock.now)
        if n:
            timers.call_later(10, tick, n - 1)

    timers.call_later(10, tick, 2)
    while (due := timers.next_due()) is not None:
        clock.now = due
        timers.fire_due()
    assert seen == [110.0, 120.0, 130.0]


async def test_the_serving_task_wakes_for_a_timer_earlier_than_the_one_it_sleeps_for() -> None:
    timers = Timers()
    task = asyncio.create_task(timers.run())
    done = asyncio.Event()
    timers.call_later(60, done.set)  # the task now sleeps for a minute...
    await asyncio.sleep(0.01)
    started = time.monotonic()
    timers.call_later(0.02, done.set)  # ...and must wake up for this one
    await asyncio.wait_for(done.wait(), 2)
    assert time.monotonic() - started < 1
    task.cancel()
