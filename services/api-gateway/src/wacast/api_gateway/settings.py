"""Settings of the api-gateway (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    api_port: int = 8080
    """Port of the public HTTP API (with `/healthz`, `/readyz` and `/metrics`) on `http_host`."""
    cors_origins: str = ""
    """Origins allowed to call the API from a browser, comma-separated (`*` for any); empty
    turns CORS off."""
    max_body_bytes: int = 1_048_576
    """Largest JSON request body accepted (413 above it)."""
    max_upload_bytes: int = 104_857_600
    """Largest media or CSV upload accepted (413 above it)."""
    rate_limit_per_second: float = 20.0
    """Requests per second each API key may make on average (0 turns rate limits off)."""
    rate_limit_burst: int = 100
    """Requests an API key may make at once before the per-second rate applies."""
    idempotency_ttl_seconds: int = 86_400
    """How long the reply to a POST with an `Idempotency-Key` is remembered (NATS KV)."""
    command_timeout_seconds: float = 10.0
    """How long a command or query waits for its owning service's answer (then 504)."""
    live_queue_size: int = 256
    """Updates buffered per WebSocket client; a client that falls further behind is dropped."""
    live_heartbeat_seconds: float = 15.0
    """A WebSocket client gets a heartbeat after this long without any other update."""
    dev_tenant: str = ""
    """Create this tenant at start-up when missing, with the key `dev_api_key` (dev stack)."""
    dev_api_key: str = ""
    """The dev tenant's API key; a random one (logged at start-up) when empty."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.api_port < 65536:
            raise ValueError("api_port must be a port number")
        if self.max_body_bytes < 1024 or self.max_upload_bytes < self.max_body_bytes:
            raise ValueError("max_upload_bytes must be >= max_body_bytes >= 1024")
        if self.rate_limit_per_second < 0 or self.rate_limit_burst < 1:
            raise ValueError("rate limits need rate_limit_per_second >= 0, rate_limit_burst >= 1")
        if self.idempotency_ttl_seconds < 60:
            raise ValueError("idempotency_ttl_seconds must be >= 60")
        if self.command_timeout_seconds <= 0:
            raise ValueError("command_timeout_seconds must be more than 0")
        if self.live_queue_size < 1 or self.live_heartbeat_seconds <= 0:
            raise ValueError("live_queue_size must be >= 1 and live_heartbeat_seconds > 0")
        if self.dev_api_key and not self.dev_tenant:
            raise ValueError("dev_api_key needs dev_tenant")
