"""The simulator's HTTP application."""

from __future__ import annotations

from litestar import Litestar

from wacast.runtime.health import health_handlers
from wacast.wa_simulator.settings import Settings


def create_app(settings: Settings) -> Litestar:
    return Litestar(route_handlers=[*health_handlers("wa-simulator", {})], debug=False)
