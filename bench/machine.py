"""The machine a result comes from, saved with it."""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

from wacast.runtime.embedded import nats_server_binary


def machine(**more: Any) -> dict[str, Any]:
    """Cores, platform and Python, then what the benchmark adds (server versions, load)."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **more,
    }


def nats_server_version() -> str:
    version = subprocess.run(
        [nats_server_binary(), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return version.strip().removeprefix("nats-server: ")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
