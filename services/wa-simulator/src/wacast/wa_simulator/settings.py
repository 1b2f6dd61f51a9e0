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
    """Seconds after which a started link completes by itself (the demo pairs unattended);
    0 turns automatic linking off (a scan or an entered code is then needed)."""
    sim_qr_rotate_seconds: float = 20.0
    """Seconds between two QR references of a device that is waiting to be linked."""
    sim_seed: int = 0
    """Seed of the simulator's random choices (0: random)."""
    sim_session_key: str = "wacast-sim"
    """Key that signs session tokens: a restarted simulator with the same key accepts them."""
    sim_drop_rate: float = 0.0
    """Random session drops per connected device per hour (0: none)."""
    sim_send_latency: float = 0.2
    """Seconds between a send and its result (realistic; bench uses 0.002)."""
    sim_delivery_latency: float = 1.0
    """Seconds from an accepted send to its delivery receipt (realistic; bench uses 0.01)."""
    sim_read_latency: float = 5.0
    """Seconds from an accepted send to its read receipt (realistic; bench uses 0.02)."""
    sim_read_probability: float = 0.7
    """Share of delivered messages that are read (realistic; bench reads all)."""
    sim_transient_error_rate: float = 0.01
    """Share of sends refused with a retryable transient error (realistic only)."""
    sim_ban_min_gap: float = 3.0
    """A send sooner than this many seconds after the previous one bans the device (realistic)."""
    sim_ban_max_per_minute: int = 12
    """More sends than this in a sliding minute bans the device (realistic)."""
    sim_ban_seconds: float = 600.0
    """How long an automatic ban lasts."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    log_format: str = "json"
    """`json` (one object per line) or `text`."""

    def __post_init__(self) -> None:
        if self.sim_profile not in ("realistic", "bench"):
            raise ValueError("sim_profile must be one of realistic, bench")
        for name in (
            "sim_pair_delay",
            "sim_drop_rate",
            "sim_send_latency",
            "sim_delivery_latency",
            "sim_read_latency",
            "sim_ban_min_gap",
            "sim_ban_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.sim_qr_rotate_seconds <= 0:
            raise ValueError("sim_qr_rotate_seconds must be > 0")
        for name in ("sim_read_probability", "sim_transient_error_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.sim_ban_max_per_minute < 1:
            raise ValueError("sim_ban_max_per_minute must be >= 1")
        if not 0 < self.sim_port < 65536:
            raise ValueError("sim_port must be between 1 and 65535")
