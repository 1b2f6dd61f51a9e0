"""Settings of the wa-simulator (environment variables `WACAST_*`)."""

from __future__ import annotations

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    sim_host: str = "127.0.0.1"
    """Address the simulator listens on."""
    sim_port: int = 8099
    """Port of the simulator's HTTP and WebSocket driver protocol."""
    sim_profile: str = "realistic"
    """`realistic` (latencies, failures, ban model) or `bench` (none of those, fast receipts)."""
    sim_pair_delay: float = 1.0
    """Seconds after which a started link completes by itself (the demo pairs unattended)."""
    sim_seed: int = 0
    """Seed of the simulator's random choices (0: random)."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    log_format: str = "json"
    """`json` (one object per line) or `text`."""

    def __post_init__(self) -> None:
        if self.sim_profile not in ("realistic", "bench"):
            raise ValueError("sim_profile must be one of realistic, bench")
        if self.sim_pair_delay < 0:
            raise ValueError("sim_pair_delay must be >= 0")
