"""Settings of the webhook-service (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings
from wacast.runtime.urlguard import allowlist_entries


class Settings(CommonSettings, frozen=True, kw_only=True):
    webhooks_port: int = 8085
    """Port of the webhook-service's health, readiness and metrics endpoint."""
    webhooks_schema: str = "webhooks"
    """Postgres schema of the webhook-service's tables (endpoints, delivery log)."""
    url_allowlist: str = ""
    """Comma-separated hosts or CIDRs that webhook URLs may reach although they are private,
    loopback or link-local (tests, private deployments). Empty: none."""
    webhook_max_attempts: int = 8
    """Tries of one delivery before it is dead (logged, visible, replayable)."""
    webhook_retry_base_seconds: float = 5.0
    """Backoff before try n + 1: uniform in [0, min(max, base * 2^(n-1))] (full jitter)."""
    webhook_retry_max_seconds: float = 3600.0
    """Longest wait between two tries of one delivery."""
    webhook_timeout_seconds: float = 10.0
    """Time one try may take in all (connect included); longer counts as a failure."""
    webhook_max_per_tenant: int = 20
    """Endpoints a tenant may have at once."""
    webhook_concurrency: int = 64
    """Requests in flight at once, all endpoints together."""
    webhook_endpoint_concurrency: int = 16
    """Requests in flight at once to one endpoint (each for a different resource: one
    resource's deliveries go one after the other)."""
    webhook_batch: int = 200
    """Due deliveries of one endpoint read from the log per round (bounds memory)."""
    webhook_read_timeout: float = 2.0
    """Seconds a command or query waits for the tables to hold a write (read your writes)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        allowlist_entries(self.url_allowlist)
        if not 1 <= self.webhook_max_attempts <= 100:
            raise ValueError("webhook_max_attempts must be 1-100")
        if self.webhook_retry_base_seconds < 0:
            raise ValueError("webhook_retry_base_seconds must be >= 0")
        if self.webhook_retry_max_seconds < self.webhook_retry_base_seconds:
            raise ValueError("webhook_retry_max_seconds must be >= webhook_retry_base_seconds")
        if self.webhook_timeout_seconds <= 0:
            raise ValueError("webhook_timeout_seconds must be positive")
        if not 1 <= self.webhook_max_per_tenant <= 1000:
            raise ValueError("webhook_max_per_tenant must be 1-1000")
        if self.webhook_concurrency < 1 or self.webhook_endpoint_concurrency < 1:
            raise ValueError("webhook concurrency limits must be at least 1")
        if not 1 <= self.webhook_batch <= 1000:
            raise ValueError("webhook_batch must be 1-1000")
        if self.webhook_read_timeout <= 0:
            raise ValueError("webhook_read_timeout must be positive")
