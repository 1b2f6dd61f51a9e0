"""cProfile results as the lines a result keeps: the top functions by own time."""

from __future__ import annotations

import cProfile
import io
import pstats


def top_by_own_time(profile: cProfile.Profile | str, count: int) -> list[str]:
    """The table of the `count` functions with the most own time, from its header on;
    `profile` is a profiler or a `.pstats` file."""
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(count)
    lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return lines[start:]
