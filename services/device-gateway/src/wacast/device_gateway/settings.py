"""Settings of the device-gateway (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    gateway_port: int = 8081
    """Port of the device-gateway's health, readiness and metrics endpoint."""
