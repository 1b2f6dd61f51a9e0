"""The nearest-rank percentile the benchmarks report."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], share: float) -> float:
    """The value `share` (0.99: p99) of the way up the sorted values; they must not be empty."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]
