"""Chaos: a campaign survives kill -9 of every service, a nats-server restart and a Postgres
restart, and one of two gateway replicas killed, with zero lost, zero duplicates, and every
projection equal to a rebuild (see `scenario.py` for the checks and the sizes).

Each test runs its own stack on 127.0.0.1 (`wacast.cli.stackrun`), is bounded by
`WACAST_CHAOS_DEADLINE`, and stops everything it started.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.chaos.scenario import CHAOS_ENV, DEADLINE, MESSAGES, Scenario
from wacast.cli.stackrun import RunningStack, running_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(DEADLINE + 180)]

Step = tuple[str, Callable[[], Awaitable[None]]]


def killed(stack: RunningStack) -> list[str]:
    """Every service but the simulator (its ledger is what the checks read)."""
    return [name for name in stack.services if name != "wa-simulator"]


def kill(stack: RunningStack, name: str) -> Step:
    async def act() -> None:
        await stack.kill(name)

    return f"kill -9 {name}", act


def restart(stack: RunningStack, name: str) -> Step:
    async def act() -> None:
        await stack.restart(name)

    return f"restart {name}", act


async def every_service_killed_then_nats_and_postgres_restarted(sc: Scenario) -> None:
    s = sc.stack
    await sc.spaced(
        [kill(s, name) for name in killed(s)] + [restart(s, "nats"), restart(s, "postgres")]
    )


async def one_gateway_replica_killed(sc: Scenario) -> None:
    await sc.spaced([kill(sc.stack, "device-gateway-2")])


async def test_a_campaign_survives_kill_9_of_every_service_and_nats_and_postgres_restarts(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path / "var", CHAOS_ENV) as stack:
        scenario = Scenario(stack)
        await scenario.prepare()
        await scenario.run(every_service_killed_then_nats_and_postgres_restarted)
        assert [e.what for e in scenario.events] == [
            *(f"kill -9 {name}" for name in killed(stack)),
            "restart nats",
            "restart postgres",
        ]
        for name in killed(stack):
            assert stack.restarts()[name] >= 1, stack.restarts()


async def test_a_campaign_survives_one_of_two_gateway_replicas_killed(tmp_path: Path) -> None:
    async with running_stack(tmp_path / "var", CHAOS_ENV, gateway_replicas=2) as stack:
        # Half the size: one kill needs less time to land mid-campaign (CI budget).
        messages = max(MESSAGES // 2, 500)
        scenario = Scenario(stack, messages=messages, devices=max(4, messages // 200))
        await scenario.prepare()
        await scenario.run(one_gateway_replica_killed)
        assert stack.restarts()["device-gateway-2"] >= 1
