"""Settings of the report-service (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    reports_port: int = 8084
    """Port of the report-service's health, readiness and metrics endpoint."""
    query_wait_seconds: float = 2.0
    """How long a query with `after_seq` waits for the read models to reach it."""
    receipt_window_seconds: float = 3600.0
    """After a campaign completes, how long receipts may still come before it is `finished`."""
    projection_batch_size: int = 1000
    """Events applied (and committed) per transaction by the projection runner."""
    query_pool_size: int = 10
    """Postgres connections for answering queries (the projection has its own)."""
    live_interval_seconds: float = 1.0
    """How often campaign and sequence progress is published to live (WebSocket) clients."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.query_wait_seconds <= 30:
            raise ValueError("query_wait_seconds must be more than 0 and at most 30")
        if self.receipt_window_seconds < 0:
            raise ValueError("receipt_window_seconds must be >= 0")
        if not 1 <= self.projection_batch_size <= 10_000:
            raise ValueError("projection_batch_size must be 1-10000")
        if self.query_pool_size < 1:
            raise ValueError("query_pool_size must be >= 1")
        if self.live_interval_seconds <= 0:
            raise ValueError("live_interval_seconds must be more than 0")
