"""What e2e and chaos tests share: the public API as a tenant sees it, the simulator's control
API, waiting on a condition with a deadline, and a paired simulator device."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from wacast.cli.stackrun import RunningStack

T = TypeVar("T")


def api_client(
    stack: RunningStack, key: str | None = None, timeout: float = 15.0
) -> httpx.AsyncClient:
    """The public API (`/api/v1`) with a Bearer key (default: the dev tenant's)."""
    return httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {key or stack.api_key}"},
        timeout=timeout,
    )


def sim_client(stack: RunningStack, timeout: float = 15.0) -> httpx.AsyncClient:
    """The simulator's control API (`/sim/v1/...`)."""
    return httpx.AsyncClient(base_url=stack.sim_url, timeout=timeout)


async def until(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    timeout: float = 15.0,
    every: float = 0.1,
    between: Callable[[], Awaitable[object]] | None = None,
) -> T:
    """Await `check` until it returns something truthy; fail naming `what` past the deadline.
    A check that raises an `httpx.TransportError` (a service restarting) is tried again;
    `between` runs after each failed try (e.g. moving the controlled clock)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            found = await check()
        except httpx.TransportError as exc:
            found, last = None, exc
        else:
            last = found
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        if between is not None:
            await between()
        await asyncio.sleep(every)


def ok(response: httpx.Response) -> Any:
    """The JSON body of a 2xx response; otherwise fail with the problem the API answered."""
    assert response.is_success, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )
    return response.json()


async def connect_sim_device(
    api: httpx.AsyncClient, sim: httpx.AsyncClient, name: str, phone: str, timeout: float = 30.0
) -> dict[str, Any]:
    """Register a simulator device, start QR pairing, scan it in the simulator, and wait
    until the API shows it connected."""
    device = ok(await api.post("/devices", json={"name": name, "driver": "sim"}))
    device_id = device["id"]
    ok(await api.post(f"/devices/{device_id}/pair", json={"method": "qr"}))

    async def scanned() -> bool:
        # The gateway asks the simulator for a link after the command's reply: until it has,
        # the simulator answers 404 or 409 (not pairing yet).
        response = await sim.post(f"/sim/v1/devices/{device_id}/scan", json={"phone": phone})
        return response.status_code == 200

    await until(scanned, f"the simulator to show {name}'s QR code", timeout)

    async def connected() -> dict[str, Any] | None:
        found: dict[str, Any] = ok(await api.get(f"/devices/{device_id}"))
        return found if found.get("status") == "connected" else None

    return await until(connected, f"device {name} to connect", timeout)
