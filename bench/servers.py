"""The servers a benchmark starts for itself: a durable nats-server and Postgres in a
temporary directory, and services as their own processes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wacast.runtime.embedded import NatsPlan, PostgresPlan, free_port, stop


@dataclass(frozen=True)
class Servers:
    root: Path
    """The temporary directory: data, logs."""
    nats: NatsPlan
    postgres: PostgresPlan
    pids: dict[str, int]
    """`nats-server` and `postgres` (the postmaster)."""


@contextmanager
def servers(prefix: str) -> Iterator[Servers]:
    """nats-server (JetStream `sync_interval: always`) and Postgres (fsync on) in a
    temporary directory; both stopped and the directory removed on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        nats_plan = NatsPlan(root / "nats", free_port())
        pg_plan = PostgresPlan(root / "postgres", free_port(), durable=True)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs.append(nats_plan.start(log=root / "nats.log"))
            procs.append(pg_plan.start(log=root / "postgres.log"))
            pids = {"nats-server": procs[0].pid, "postgres": procs[1].pid}
            yield Servers(root, nats_plan, pg_plan, pids)
        finally:
            for proc in reversed(procs):
                stop(proc)


def start_module(
    module: str, env: Mapping[str, str], log: Path, *python: str
) -> subprocess.Popen[bytes]:
    """`python [python options] -m module` with its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *python, "-m", module],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def logs_shown_on_failure(*logs: Path, tail: int = 4000) -> Iterator[None]:
    """On an error, the end of each log that exists on stderr, then the error."""
    try:
        yield
    except BaseException:
        for log in logs:
            if log.exists():
                print(f"--- {log.name}\n{log.read_text()[-tail:]}", file=sys.stderr)
        raise
