"""The api-gateway process: NATS, the tenants owner, the key index, the live hub, and the
Litestar app under uvicorn (which also serves `/healthz`, `/readyz` and `/metrics`).

It follows `wacast.runtime.service.serve` step by step, but serves the public API on its
port instead of the bare health app.
"""

from __future__ import annotations

import logging

from wacast.api_gateway.app import create_app
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.settings import Settings
from wacast.api_gateway.tenants import ensure_dev_tenant, serve_tenants
from wacast.contracts.subjects import Topology
from wacast.runtime.clock import ControlledClock, make_clock
from wacast.runtime.health import http_server
from wacast.runtime.http_metrics import instrument
from wacast.runtime.provisioning import ensure_streams
from wacast.runtime.service import make_broker

log = logging.getLogger("wacast.api")

SHUTDOWN_SECONDS = 10
"""On SIGTERM, requests in flight get this long; live sockets are closed."""


async def serve(settings: Settings) -> None:
    topology = Topology(settings.namespace)
    broker = make_broker(settings, "api-gateway")
    await broker.connect()
    nc = broker.connection
    await ensure_streams(nc, topology, settings.stream_replicas)
    clock = make_clock(settings.clock)
    if isinstance(clock, ControlledClock):
        await clock.follow(nc, topology)
    gateway = Gateway.build(settings, nc, topology, clock)
    serve_tenants(broker, topology, gateway.tenants, gateway.keys)
    await broker.start()
    await gateway.start()
    if settings.dev_tenant:
        key = await ensure_dev_tenant(gateway.tenants, settings.dev_tenant, settings.dev_api_key)
        shown = key if not settings.dev_api_key else f"{key[:6]}... (WACAST_DEV_API_KEY)"
        log.info("dev tenant %s ready, API key %s", settings.dev_tenant, shown)
    server = http_server(
        instrument(create_app(gateway), "api-gateway"),
        settings.http_host,
        settings.api_port,
        handle_signals=True,
    )
    server.config.timeout_graceful_shutdown = SHUTDOWN_SECONDS
    log.info("api-gateway started", extra={"port": settings.api_port})
    try:
        await server.serve()
    finally:
        await gateway.stop()
        await broker.stop()
        await clock.close()
        log.info("api-gateway stopped")
