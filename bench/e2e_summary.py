"""The e2e run's figures, as the JSON reports them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from bench.e2e_sampler import Sample
from bench.e2e_series import lags, rates
from bench.percentile import percentile
from bench.process_usage import Usage

MB = 1024 * 1024


def summary(
    run: dict[str, Any], samples: Sequence[Sample], usage: Sequence[Usage], raw: dict[str, Any]
) -> dict[str, Any]:
    seconds = run["seconds"]
    messages = run["messages_done"]
    per_s = messages / seconds
    lag = [y for _, y in lags(samples)]
    first, last = usage[0], usage[-1]
    cpu = {name: round(last.cpu[name] - first.cpu.get(name, 0.0), 1) for name in last.cpu}
    cores = os.cpu_count() or 1
    peak = {name: max(u.memory.get(name, 0) for u in usage) for name in last.memory}
    sent_rates = [y for _, y in rates(samples, lambda s: s.sent)]
    return {
        "completed": run["completed"],
        "messages": messages,
        "messages_per_minute": round(per_s * 60),
        "messages_per_s": round(per_s, 1),
        "seconds": round(seconds, 2),
        "seconds_until_all_sent": run["seconds_until_all_sent"],
        "seconds_until_all_outcomes_projected": run["seconds_until_all_outcomes_projected"],
        "sends_per_minute_peak": round(max(sent_rates, default=0) * 60),
        "time_to_first_send_s": (
            None if run["time_to_first_send_s"] is None else round(run["time_to_first_send_s"], 3)
        ),
        "messages_stream_events": samples[-1].stream_end - run["stream_before"],
        "events_per_requested_message": round(
            (samples[-1].stream_end - run["stream_before"]) / max(run["report_totals"]["total"], 1),
            2,
        ),
        "projection_lag_p50_s": percentile(lag, 0.5) if lag else None,
        "projection_lag_p99_s": percentile(lag, 0.99) if lag else None,
        "projection_lag_max_s": max(lag, default=None),
        "raw_atomic_batch_per_s": round(raw["per_s"], 1),
        "raw_atomic_batch_rounds": raw["rounds"],
        "e2e_ratio": float(f"{per_s / raw['per_s']:.3g}"),
        "peak_rss_mb": {name: round(v / MB, 1) for name, v in sorted(peak.items())},
        "peak_rss_note": "RSS of each process; postgres: PSS summed over its backends",
        "cpu_seconds": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "cpu_share_of_machine": round(sum(cpu.values()) / (seconds * cores), 3),
        "report_totals": run["report_totals"],
        "failed_by_reason": run["failed_by_reason"],
        "sent": run["sent"],
        "sample_every_s": round(samples[1].at - samples[0].at, 2) if len(samples) > 1 else None,
    }
