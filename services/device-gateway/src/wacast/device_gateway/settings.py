"""Settings of the device-gateway (environment variables `WACAST_*`)."""

from __future__ import annotations

import os
import re
import socket

from wacast.runtime.settings import CommonSettings


def default_replica_id() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:60] or "host"
    return f"{host}-{os.getpid()}"


class Settings(CommonSettings, frozen=True, kw_only=True):
    gateway_port: int = 8081
    """Port of the device-gateway's health, readiness and metrics endpoint."""
    sim_url: str = "http://127.0.0.1:8099"
    """Where the `sim` driver finds the wa-simulator (HTTP or ws URL)."""
    whatsapp_sessions: str = "var/sessions"
    """Where the WhatsApp (neonize) driver keeps its working session files: a directory, or
    a postgres URL (the sessions object store keeps the copy that survives)."""
    replica_id: str = ""
    """Name of this replica in partition leases (empty: hostname and process id)."""
    lease_ttl_seconds: float = 15.0
    """A partition lease not renewed for this long is free for another replica to take."""
    lease_renew_seconds: float = 5.0
    """How often a replica renews its leases and looks for free partitions."""
    stuck_timeout_seconds: float = 300.0
    """A message handed to the driver without an outcome this long fails as `timeout`."""
    offline_timeout_seconds: float = 3600.0
    """A message pending this long on an offline device is cancelled as `device_offline`."""
    lane_bound: int = 100_000
    """Most messages one device's lane holds; more are cancelled as `lane_full`."""
    typing_seconds_per_char: float = 0.05
    """'typing…' shown before a send, per character of its text."""
    typing_max_seconds: float = 5.0
    """Longest 'typing…' before one send (never longer than the gap before it)."""
    pacing_guard_seconds: float = 0.025
    """Gaps are drawn this far (at most a quarter of the range) inside [min, max], so
    network jitter cannot push a gap out of its range."""
    prepare_seconds: float = 0.1
    """A paced send's hand-off is recorded this long before it is due, so the write's
    latency never delays the send (and never stretches a gap)."""
    pair_timeout_seconds: float = 180.0
    """Linking not completed this long after it started fails as `timeout`."""
    reconnect_min_seconds: float = 0.5
    """First delay before a dropped session is connected again (doubles, with jitter)."""
    reconnect_max_seconds: float = 60.0
    """Longest delay between two reconnect attempts of one session."""
    health_interval_seconds: float = 15.0
    """How often the gateway checks that every session that should be online is."""
    sweep_interval_seconds: float = 5.0
    """How often stuck, expired, offline-timed-out and withdrawn messages are swept."""
    dispatch_concurrency: int = 1000
    """Lanes handing a message to the driver at once (the rest wait their turn)."""
    connect_concurrency: int = 256
    """Sessions connected at once when a replica takes partitions over."""
    receipt_memory: int = 200_000
    """WhatsApp message ids remembered to attribute delivery and read receipts."""
    receipt_recovery_seconds: float = 3600.0
    """Sends this recent are read back when a partition is taken, so receipts and replies
    to sends made before a restart or takeover still count."""
    media_cache_bytes: int = 64 * 1024 * 1024
    """Media bytes kept in memory (a campaign sends the same file many times)."""

    @property
    def replica(self) -> str:
        return self.replica_id or default_replica_id()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.replica_id and not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", self.replica_id):
            raise ValueError("replica_id must be 1-100 characters of A-Z, a-z, 0-9, _ or -")
        if self.lease_renew_seconds * 2 >= self.lease_ttl_seconds:
            raise ValueError("lease_renew_seconds must be less than half of lease_ttl_seconds")
        for name in (
            "stuck_timeout_seconds",
            "offline_timeout_seconds",
            "pair_timeout_seconds",
            "reconnect_min_seconds",
            "health_interval_seconds",
            "sweep_interval_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds must be >= reconnect_min_seconds")
        for name in (
            "typing_seconds_per_char",
            "typing_max_seconds",
            "pacing_guard_seconds",
            "prepare_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("lane_bound", "connect_concurrency", "dispatch_concurrency", "receipt_memory"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
