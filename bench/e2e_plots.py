"""The e2e run's plots: throughput, projection lag and CPU per process over time (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.e2e_sampler import Sample
from bench.e2e_series import cpu_shares, lags, rates
from bench.process_usage import Usage


def plots(
    samples: Sequence[Sample], usage: Sequence[Usage], directory: Path, leads: int
) -> list[str]:
    """`e2e-throughput.png`, `e2e-lag.png` and `e2e-cpu.png` in `directory`; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(directory / name)
        plt.close(fig)
        written.append(str(directory / name))

    sent = rates(samples, lambda s: s.sent)
    outcomes = rates(samples, lambda s: sum(v for k, v in s.counts.items() if k != "pending"))
    read = rates(samples, lambda s: s.counts.get("read", 0))
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    for label, series in (
        ("sends accepted by the simulator", sent),
        ("messages past pending in the report", outcomes),
        ("read receipts in the report", read),
    ):
        ax.plot([x for x, _ in series], [y * 60 for _, y in series], label=label, linewidth=1.3)
    ax.set_title(f"e2e: one campaign to {leads:,} leads, zero pacing")
    ax.set_xlabel("seconds since the trigger")
    ax.set_ylabel("messages per minute (over 5 s)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, "e2e-throughput.png")

    lag = lags(samples)
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    ax.plot([x for x, _ in lag], [y for _, y in lag], linewidth=1.3, label="lag (seconds)")
    ax.set_title("e2e: report projection lag on MESSAGES (time until it reached the end)")
    ax.set_xlabel("seconds since the trigger")
    ax.set_ylabel("seconds")
    ax.grid(True, alpha=0.3)
    behind = ax.twinx()
    behind.plot(
        [s.at for s in samples],
        [s.stream_end - s.projected for s in samples],
        color="tab:red",
        linewidth=0.8,
        alpha=0.6,
        label="events behind",
    )
    behind.set_ylabel("events behind", color="tab:red")
    save(fig, "e2e-lag.png")

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    for name, series in sorted(cpu_shares(usage).items()):
        if series and max(y for _, y in series) > 0.05:
            ax.plot([x for x, _ in series], [y for _, y in series], label=name, linewidth=1.1)
    ax.set_title("e2e: CPU per process (1.0 = one core; the machine has two)")
    ax.set_xlabel("seconds since the trigger")
    ax.set_ylabel("cores")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    save(fig, "e2e-cpu.png")
    return written
