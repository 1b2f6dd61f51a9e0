"""`python -m wacast.api_gateway`: run the api-gateway."""

from __future__ import annotations

from wacast.api_gateway.app import setup
from wacast.api_gateway.settings import Settings
from wacast.runtime.service import run


def main() -> None:
    run("api-gateway", Settings, lambda s: s.api_port, setup, needs_database=False)


if __name__ == "__main__":
    main()
