"""`python -m wacast.device_gateway`: run the device-gateway."""

from __future__ import annotations

from wacast.device_gateway.app import setup
from wacast.device_gateway.settings import Settings
from wacast.runtime.service import run


def main() -> None:
    run("device-gateway", Settings, lambda s: s.gateway_port, setup, needs_database=False)


if __name__ == "__main__":
    main()
