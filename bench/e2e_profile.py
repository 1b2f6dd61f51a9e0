"""`--profile SERVICE,...`: those services run under cProfile from start to exit, and
their top functions and `.pstats` files are kept."""

from __future__ import annotations

import os
from pathlib import Path

from bench.output import RESULTS
from bench.profiling import top_by_own_time

HOOK = """
import atexit, cProfile, os, sys
_target = os.environ.get("WACAST_BENCH_PROFILE_MODULES", "").split(",")
_argv = getattr(sys, "orig_argv", [])
if "-m" in _argv and _argv[_argv.index("-m") + 1] in _target:
    _profile = cProfile.Profile()
    _out = os.path.join(
        os.environ["WACAST_BENCH_PROFILE_DIR"], _argv[_argv.index("-m") + 1] + ".pstats"
    )
    def _dump():
        _profile.disable()
        _profile.dump_stats(_out)
    atexit.register(_dump)
    _profile.enable()
"""
"""A `sitecustomize` that profiles the chosen services' main thread from start to exit."""


def profiling_env(root: Path, services: str) -> dict[str, str]:
    """The environment that makes the services (comma-separated) write `.pstats` files
    into `root/profiles` when they exit."""
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    (root / "profiles").mkdir()
    modules = [f"wacast.{name.replace('-', '_')}" for name in services.split(",")]
    return {
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        "WACAST_BENCH_PROFILE_MODULES": ",".join(modules),
        "WACAST_BENCH_PROFILE_DIR": str(root / "profiles"),
    }


def kept_profiles(root: Path, count: int = 25) -> dict[str, list[str]]:
    """Each service's top functions by own time; its `.pstats` moved to
    bench/results/profiles/ as `e2e-<module>.pstats`."""
    profiles = sorted((root / "profiles").glob("*.pstats"))
    tops = {path.stem: top_by_own_time(str(path), count) for path in profiles}
    keep = RESULTS / "profiles"
    keep.mkdir(parents=True, exist_ok=True)
    for path in profiles:
        path.replace(keep / f"e2e-{path.name}")
    return tops
