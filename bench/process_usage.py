"""CPU and memory of processes, sampled while a benchmark runs (psutil)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import psutil

TREES = {"postgres"}
"""Processes measured with their children (Postgres forks a backend per connection)."""


def tree(pid: int) -> list[psutil.Process]:
    """A process and its descendants."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def usage(pid: int, *, children: bool) -> tuple[float, int]:
    """CPU seconds (user + system) and memory of a process; with `children`, of its whole
    tree (reaped children's CPU included) and memory as the sum of PSS (shared pages split
    among the processes sharing them: Postgres backends share its buffers)."""
    procs = tree(pid) if children else tree(pid)[:1]
    cpu, memory = 0.0, 0
    for n, proc in enumerate(procs):
        try:
            times = proc.cpu_times()
            memory += proc.memory_full_info().pss if children else proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        cpu += times.user + times.system
        if n == 0 and children:
            cpu += times.children_user + times.children_system
    return cpu, memory


@dataclass
class Usage:
    at: float
    """Seconds since the sampling started."""
    cpu: dict[str, float]
    """CPU seconds used so far."""
    memory: dict[str, int]
    """RSS (PSS summed over the tree for processes in TREES)."""


class Processes:
    """Samples CPU and memory of named processes every `every` seconds (psutil walks every
    process: slower than a benchmark's progress samples, so on a task of its own)."""

    def __init__(self, pids: dict[str, int], started: float, every: float) -> None:
        self.pids = pids
        self.started = started
        self.every = every
        self.usage: list[Usage] = []

    def take(self) -> Usage:
        used = {name: usage(pid, children=name in TREES) for name, pid in self.pids.items()}
        return Usage(
            time.monotonic() - self.started,
            {name: u[0] for name, u in used.items()},
            {name: u[1] for name, u in used.items()},
        )

    async def run(self) -> None:
        while True:
            self.usage.append(await asyncio.to_thread(self.take))
            await asyncio.sleep(self.every)
