"""`/healthz`, `/readyz` and `/metrics`: the same three endpoints on every service."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from litestar import Litestar, MediaType, Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

ReadinessCheck = Callable[[], Awaitable[bool]]


def health_handlers(service: str, checks: dict[str, ReadinessCheck]) -> list[HTTPRouteHandler]:
    @get("/healthz", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @get("/readyz", media_type=MediaType.JSON, include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        results: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        ready = all(results.values())
        body = {"status": "ready" if ready else "not ready", "service": service, "checks": results}
        return Response(body, status_code=200 if ready else 503)

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return [healthz, readyz, metrics]


def health_app(service: str, checks: dict[str, ReadinessCheck]) -> Litestar:
    return Litestar(
        route_handlers=health_handlers(service, checks), openapi_config=None, logging_config=None
    )


def http_server(app: Any, host: str, port: int, *, handle_signals: bool = False) -> uvicorn.Server:
    """An uvicorn server; inside a service host, signals belong to the host."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", access_log=False
    )
    return uvicorn.Server(config) if handle_signals else _HostedServer(config)


class _HostedServer(uvicorn.Server):
    """Leaves signals to the service host, which stops everything in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
