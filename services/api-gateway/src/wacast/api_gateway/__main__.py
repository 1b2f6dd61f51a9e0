"""`python -m wacast.api_gateway`: run the api-gateway."""

from __future__ import annotations

import asyncio
import sys

from wacast.api_gateway.host import serve
from wacast.api_gateway.settings import Settings
from wacast.runtime.logs import configure_logging
from wacast.runtime.settings import SettingsError, load_settings
from wacast.runtime.telemetry import TelemetryError
from wacast.runtime.telemetry import setup as setup_telemetry


def main() -> None:
    try:
        settings = load_settings(Settings)
    except SettingsError as exc:
        print(f"api-gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("api-gateway", settings.log_level, settings.log_format)
    try:
        setup_telemetry("api-gateway")
    except TelemetryError as exc:
        print(f"api-gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
