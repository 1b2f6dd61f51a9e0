"""Stopping asyncio tasks without losing the caller's own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RECANCEL_SECONDS = 1.0
"""How long a cancelled task may take before it is cancelled again."""


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until every one has ended.

    `with suppress(CancelledError): await task` would also swallow a cancellation of the
    caller arriving meanwhile, so a loop around it never stops and whoever stops the caller
    waits for ever; `asyncio.wait` ignores the tasks' outcomes and raises only the caller's.
    On Python 3.11 `asyncio.wait_for` (inside nats-py and asyncpg) can swallow a cancellation
    that arrives as its call completes, so a task still running a second later is cancelled
    again.
    """
    stopping = list(tasks)
    pending = {task for task in stopping if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in stopping:
        if not task.cancelled():
            task.exception()  # seen: how a stopped task ended is not the caller's concern
