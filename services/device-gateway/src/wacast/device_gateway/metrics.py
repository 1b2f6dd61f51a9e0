"""The gateway's Prometheus metrics (low-cardinality labels only: never a device id)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SENDS = Counter(
    "wacast_gateway_sends_total",
    "Messages that left a lane, by outcome (sent, failed, retry, cancelled) and reason",
    ["status", "reason"],
)
SEND_SECONDS = Histogram(
    "wacast_gateway_send_seconds",
    "Time from calling the driver's send to its result",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GAP_SECONDS = Histogram(
    "wacast_gateway_gap_seconds",
    "Seconds between two consecutive sends of one device",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300),
)
LANES_BUSY = Gauge("wacast_gateway_lanes_busy", "Lanes with a message handed to the driver")
QUEUE_DEPTH = Gauge(
    "wacast_gateway_queue_depth", "Messages pending in the lanes this replica serves"
)
DEVICES = Gauge("wacast_gateway_devices", "Devices this replica serves, by state", ["state"])
BANS = Counter("wacast_gateway_bans_total", "Bans reported by WhatsApp")
LEASES = Gauge("wacast_gateway_leases", "Send partitions this replica holds")
RECONNECTS = Counter("wacast_gateway_reconnects_total", "Session reconnect attempts")
FENCED = Counter(
    "wacast_gateway_lanes_fenced_total",
    "Lane appends that found another replica's event: the partition was taken over",
)
TAKEOVERS = Counter(
    "wacast_gateway_partition_starts_total", "Partitions this replica started serving"
)
SENT_TODAY = Gauge(
    "wacast_gateway_sends_today",
    "Messages handed to the driver today (each device's local day) by the lanes served here",
)
DAILY_CAP = Gauge(
    "wacast_gateway_daily_cap",
    "Sum of today's daily caps (warm-up included) of the capped lanes served here",
)
LANES_AT_CAP = Gauge(
    "wacast_gateway_lanes_at_cap",
    "Lanes holding messages until local midnight because their daily cap is reached",
)
