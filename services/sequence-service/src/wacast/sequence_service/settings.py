"""Settings of the sequence-service (environment variables `WACAST_*`)."""

from __future__ import annotations

from wacast.runtime.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    sequences_port: int = 8083
    """Port of the sequence-service's health, readiness and metrics endpoint."""
    sequences_schema: str = "sequences_private"
    """Postgres schema of the sequence-service's private tables (timers, lead index)."""
    sequences_timer_batch: int = 1000
    """Due steps fired per round (appended in atomic batches of up to 1,000 events)."""
    sequences_read_timeout: float = 2.0
    """Seconds a command or reaction waits for the private tables to catch up with the
    streams before it decides (read your writes)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.sequences_timer_batch <= 5000:
            raise ValueError("sequences_timer_batch must be 1-5000")
        if self.sequences_read_timeout <= 0:
            raise ValueError("sequences_read_timeout must be positive")
