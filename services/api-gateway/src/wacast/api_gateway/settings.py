"""Settings of the api-gateway (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    api_port: int = 8080
    """Port of the api-gateway's API endpoint."""
