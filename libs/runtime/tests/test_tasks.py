"""Stopping tasks: a swallowed cancellation is repeated, and the caller's own is never lost."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from wacast.runtime import tasks
from wacast.runtime.tasks import cancel_and_wait


async def test_a_task_that_swallows_its_first_cancellation_is_cancelled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "RECANCEL_SECONDS", 0.05)
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # what 3.11's wait_for can do to a cancellation

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)

    await asyncio.wait_for(cancel_and_wait([task]), 5)

    assert task.cancelled()
    assert swallowed == 1


async def test_the_callers_own_cancellation_is_not_swallowed_while_it_waits() -> None:
    """The old `with suppress(CancelledError): await task` lost it, and the loop went on."""
    inner_stopping = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            inner_stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.2)  # takes a moment to clean up

    rounds = 0

    async def loop_that_stops_its_helper() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            helper = asyncio.create_task(slow_to_stop())
            await asyncio.sleep(0)
            await cancel_and_wait([helper])

    looping = asyncio.create_task(loop_that_stops_its_helper())
    await inner_stopping.wait()
    looping.cancel()  # arrives while the loop waits for its helper to stop

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(looping, 5)
    assert rounds == 1


async def test_a_failed_task_is_stopped_without_an_unretrieved_exception() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)

    await cancel_and_wait([task])

    assert isinstance(task.exception(), RuntimeError)
