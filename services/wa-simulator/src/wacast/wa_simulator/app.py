"""The simulator's HTTP application: control API, driver WebSocket, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State

from wacast.runtime.health import health_handlers
from wacast.runtime.tasks import cancel_and_wait
from wacast.wa_simulator import metrics
from wacast.wa_simulator.network import Network
from wacast.wa_simulator.routes import TITLES, control_handlers, problem_body, problem_for
from wacast.wa_simulator.settings import Settings
from wacast.wa_simulator.timers import Timers

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, rng: random.Random | None = None) -> Litestar:
    timers = Timers()
    network = Network(settings, timers=timers, rng=rng)
    metrics.bind_device_gauges(network.count_linked, network.count_connected)

    @contextlib.asynccontextmanager
    async def run_timers(_: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(timers.run(), name="wa-simulator-timers")
        try:
            yield
        finally:
            await cancel_and_wait([task])

    async def ready() -> bool:
        return True

    def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        status, code, detail = problem_for(exc)
        if status >= 500:
            log.error("request failed: %s %s", request.method, request.url.path, exc_info=exc)
        title = TITLES.get(status, "Internal error" if status >= 500 else "Error")
        return Response(
            problem_body(status, code, title, detail, request.url.path),
            status_code=status,
            media_type="application/problem+json",
        )

    return Litestar(
        route_handlers=[
            *health_handlers("wa-simulator", {"timers": ready}),
            *control_handlers(network),
        ],
        exception_handlers={Exception: on_error},
        lifespan=[run_timers],
        state=State({"network": network, "settings": settings}),
        openapi_config=None,
        debug=False,
    )
