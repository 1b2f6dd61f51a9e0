"""Settings of the sequence-service (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    sequences_port: int = 8083
    """Port of the sequence-service's health, readiness and metrics endpoint."""
