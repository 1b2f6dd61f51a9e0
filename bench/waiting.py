"""Waiting for a condition, or for a service to answer, within a deadline."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

import httpx


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Seconds until `check` holds, asked every 0.2 s."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def ready(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 120.0
) -> float:
    """Seconds until `GET /readyz` on the port answers 200; an error if `proc` exits first."""
    started = time.monotonic()
    async with httpx.AsyncClient() as http:
        while time.monotonic() - started < timeout:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"nothing ready on port {port} within {timeout:.0f} s")
