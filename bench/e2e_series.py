"""Time series derived from the e2e run's samples: rates, projection lag, CPU per process."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from bench.e2e_sampler import Sample
from bench.process_usage import Usage


def lags(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """(time, seconds until the report projection's checkpoint reached the stream's end
    at that time) for every sample whose end was reached."""
    found: list[tuple[float, float]] = []
    for i, s in enumerate(samples):
        later = next((t for t in samples[i:] if t.projected >= s.stream_end), None)
        if later is not None:
            found.append((s.at, later.at - s.at))
    return found


def rates(
    samples: Sequence[Sample], value: Callable[[Sample], float], window: float = 5.0
) -> list[tuple[float, float]]:
    """Per second over the last `window` seconds, at each sample."""
    found: list[tuple[float, float]] = []
    start = 0
    for b in samples[1:]:
        while samples[start + 1].at <= b.at - window:
            start += 1
        a = samples[start]
        if b.at > a.at:
            found.append((b.at, (value(b) - value(a)) / (b.at - a.at)))
    return found


def cpu_shares(samples: Sequence[Usage]) -> dict[str, list[tuple[float, float]]]:
    """Cores each process used between two usage samples (1.0: one core)."""
    names = samples[0].cpu
    return {
        name: [
            (b.at, (b.cpu[name] - a.cpu[name]) / (b.at - a.at))
            for a, b in itertools.pairwise(samples)
            if b.at > a.at and name in a.cpu and name in b.cpu
        ]
        for name in names
    }
