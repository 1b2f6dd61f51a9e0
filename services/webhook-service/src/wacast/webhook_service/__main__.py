"""`python -m wacast.webhook_service`: run the webhook-service."""

from __future__ import annotations

from wacast.runtime.service import run
from wacast.webhook_service.app import setup
from wacast.webhook_service.settings import Settings


def main() -> None:
    run("webhook-service", Settings, lambda s: s.webhooks_port, setup, needs_database=True)


if __name__ == "__main__":
    main()
