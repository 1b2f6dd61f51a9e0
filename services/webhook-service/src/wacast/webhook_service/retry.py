"""When a failed delivery is tried again: exponential backoff with full jitter."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before try `attempt` + 1: uniform in [0, min(cap, base * 2^(attempt - 1))],
    so endpoints that failed together do not come back in step."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(0, ceiling)
