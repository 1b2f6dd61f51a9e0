"""docs/CONFIGURATION.md says what the Settings classes say."""

from __future__ import annotations

from wacast.cli.dev import repo_root
from wacast.cli.devstack_docs import DOC, check_or_write, render


def test_configuration_doc_is_in_sync_with_the_settings_classes() -> None:
    assert check_or_write(repo_root(), write=False), f"{DOC} is out of date: run ./dev docs"


def test_configuration_doc_lists_every_service_port_and_common_variable() -> None:
    text = render()
    for variable in (
        "WACAST_NATS_URL",
        "WACAST_DATABASE_URL",
        "WACAST_API_PORT",
        "WACAST_GATEWAY_PORT",
        "WACAST_CAMPAIGNS_PORT",
        "WACAST_SEQUENCES_PORT",
        "WACAST_REPORTS_PORT",
        "WACAST_SIM_PORT",
        "WACAST_DEV_NATS_PORT",
        "WACAST_DEV_POSTGRES_PORT",
    ):
        assert f"`{variable}`" in text
