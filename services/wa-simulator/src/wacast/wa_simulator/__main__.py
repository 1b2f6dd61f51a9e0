"""`python -m wacast.wa_simulator`: run the WhatsApp simulator."""

from __future__ import annotations

import asyncio
import sys

from wacast.runtime.health import http_server
from wacast.runtime.logs import configure_logging
from wacast.runtime.settings import SettingsError, load_settings
from wacast.wa_simulator.app import create_app
from wacast.wa_simulator.settings import Settings


def main() -> None:
    try:
        settings = load_settings(Settings)
    except SettingsError as exc:
        print(f"wa-simulator: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("wa-simulator", settings.log_level, settings.log_format)
    server = http_server(
        create_app(settings), settings.sim_host, settings.sim_port, handle_signals=True
    )
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
