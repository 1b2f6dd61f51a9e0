"""Settings of the campaign-service (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    campaigns_port: int = 8082
    """Port of the campaign-service's health, readiness and metrics endpoint."""
