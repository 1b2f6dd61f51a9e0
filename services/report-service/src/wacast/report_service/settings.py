"""Settings of the report-service (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    reports_port: int = 8084
    """Port of the report-service's health, readiness and metrics endpoint."""
