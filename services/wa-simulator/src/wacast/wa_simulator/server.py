"""The simulator as an uvicorn server, with the built-in WebSocket protocol."""

from __future__ import annotations

import uvicorn
from litestar import Litestar

from wacast.wa_simulator.app import create_app
from wacast.wa_simulator.settings import Settings
from wacast.wa_simulator.wsserver import WebSocketProtocol


def simulator_server(settings: Settings, app: Litestar | None = None) -> uvicorn.Server:
    config = uvicorn.Config(
        app if app is not None else create_app(settings),
        host=settings.sim_host,
        port=settings.sim_port,
        ws=WebSocketProtocol,
        lifespan="on",
        log_level="warning",
        access_log=False,
        ws_max_size=64 * 1024 * 1024,
    )
    return uvicorn.Server(config)
