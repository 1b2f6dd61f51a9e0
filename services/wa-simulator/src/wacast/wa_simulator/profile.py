"""The two behaviours: `realistic` (latencies, failures, ban model) and `bench` (none)."""

from __future__ import annotations

from dataclasses import dataclass

from wacast.wa_simulator.settings import Settings


@dataclass(frozen=True, slots=True)
class Behaviour:
    name: str
    send_latency: float
    delivery_latency: float
    read_latency: float
    read_probability: float
    transient_error_rate: float
    ban_model: bool
    jitter: float
    """Latencies vary uniformly by +/- this share of their value."""

    @classmethod
    def of(cls, settings: Settings) -> Behaviour:
        if settings.sim_profile == "bench":
            return cls(
                name="bench",
                send_latency=0.002,
                delivery_latency=0.01,
                read_latency=0.02,
                read_probability=1.0,
                transient_error_rate=0.0,
                ban_model=False,
                jitter=0.0,
            )
        return cls(
            name="realistic",
            send_latency=settings.sim_send_latency,
            delivery_latency=settings.sim_delivery_latency,
            read_latency=settings.sim_read_latency,
            read_probability=settings.sim_read_probability,
            transient_error_rate=settings.sim_transient_error_rate,
            ban_model=True,
            jitter=0.3,
        )
