"""Prometheus metrics of the simulator (process-wide, like the default registry)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge

RECEIVED = Counter("wasim_messages_received_total", "Messages the simulated network accepted")
DUPLICATES = Counter(
    "wasim_messages_duplicate_total", "Accepted messages the ledger judged duplicates"
)
REFUSED = Counter("wasim_sends_refused_total", "Sends the network refused", ["reason"])
BANS = Counter("wasim_bans_total", "Devices banned (by the ban model or by hand)")
DROPS = Counter("wasim_session_drops_total", "Sessions dropped by the network")
LINKS = Counter("wasim_links_total", "Devices linked by QR or pairing code")
DEVICES_LINKED = Gauge("wasim_devices_linked", "Devices linked to an account")
DEVICES_CONNECTED = Gauge("wasim_devices_connected", "Devices with a live session")
DRIVER_CONNECTIONS = Gauge("wasim_driver_connections", "Open driver WebSocket connections")


def bind_device_gauges(linked: Callable[[], float], connected: Callable[[], float]) -> None:
    """Gauges read the network when scraped (the last app created wins, as in tests)."""
    DEVICES_LINKED.set_function(linked)
    DEVICES_CONNECTED.set_function(connected)
