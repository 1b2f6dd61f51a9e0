"""`python -m wacast.campaign_service`: run the campaign-service."""

from __future__ import annotations

from wacast.campaign_service.app import setup
from wacast.campaign_service.settings import Settings
from wacast.runtime.service import run


def main() -> None:
    run("campaign-service", Settings, lambda s: s.campaigns_port, setup, needs_database=True)


if __name__ == "__main__":
    main()
