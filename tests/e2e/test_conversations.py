"""Replies, end to end through the public API and the simulator (issue 11).

A contact replies with `POST /sim/v1/inbound`; the device-gateway records it, the campaign
and sequence services act on it, and the report-service shows it in the lead's
conversation. The clock is the stack's controlled one: a test moves it forward in small
steps while it waits (`advance_until`), so a paced lane or a retry after a transient
failure goes on, and by hours at once to make later steps due.

- A STOP reply after step 1 of a sequence opts the lead out: step 2 is never sent, and a
  campaign created afterwards skips it (checked in the simulator's ledger and the API).
- A normal reply ends an enrollment of a sequence with `stop_on_reply=end`, and shows in
  `GET /leads/{id}/conversation` as the answer to step 1.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.helpers import connect_sim_device, ok, until
from wacast.cli.stackrun import RunningStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

T = TypeVar("T")

TICK = timedelta(seconds=2)
"""How far the controlled clock moves per wait step: 8 s a wall second at most, so a 30 s
pacing gap stays over the simulator's 3 s (wall time) too-fast rule."""
PACING = {"min_seconds": 30, "max_seconds": 30}
LATER = timedelta(hours=2)
"""Well past step 2's delay (one hour after step 1)."""


async def advance_until(
    stack: RunningStack,
    check: Callable[[], Awaitable[T | None]],
    what: str,
    timeout: float = 90.0,
) -> T:
    """Await `check` until it is truthy, moving the controlled clock by `TICK` between
    tries; fail naming `what` past the (wall time) deadline."""
    return await until(check, what, timeout, every=0.25, between=lambda: stack.advance_clock(TICK))


SIM_MIN_GAP = 3.5
"""Wall seconds between two sends of one device: the simulator bans a device that sends
again within 3 s (its too-fast rule measures wall time, not the controlled clock)."""


async def quiet(sim: httpx.AsyncClient, device: dict[str, Any]) -> None:
    """Wait until the device's last accepted send is `SIM_MIN_GAP` wall seconds old, so the
    next one cannot trip the simulator's ban model."""

    async def calm() -> bool:
        entries = await ledger_to(sim, device["id"], "")
        if not entries:
            return True
        last = datetime.fromisoformat(entries[-1]["at"])
        return (datetime.now(UTC) - last).total_seconds() >= SIM_MIN_GAP

    await until(calm, f"{device['name']} to be quiet for {SIM_MIN_GAP} s", timeout=30)


def digits(phone: str) -> str:
    return phone.lstrip("+")


async def ledger_to(sim: httpx.AsyncClient, device_id: str, phone: str) -> list[dict[str, Any]]:
    """What the simulated network accepted from `device_id` for `phone`, in order."""
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        page = ok(await sim.get("/sim/v1/ledger", params={"device_id": device_id, "after": after}))
        entries += page["entries"]
        if not page["entries"]:
            break
        after = page["next_after"]
    return [e for e in entries if digits(phone) in e["to"]]


async def create_lead(
    api: httpx.AsyncClient, phone: str, name: str, device_id: str, tags: list[str]
) -> dict[str, Any]:
    created: dict[str, Any] = ok(
        await api.post(
            "/leads",
            json={"phone": phone, "name": name, "device_id": device_id, "tags": tags},
        )
    )
    return created


async def two_step_sequence(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """Step 1 at once, step 2 an hour after step 1 was sent; a reply ends it."""
    created: dict[str, Any] = ok(
        await api.post(
            "/sequences",
            json={
                "name": name,
                "steps": [
                    {"id": "hello", "delay_seconds": 0, "message": {"text": "Hi {name}, step 1"}},
                    {"id": "again", "delay_seconds": 3600, "message": {"text": "Step 2, {name}"}},
                ],
                "pacing": PACING,
                "stop_on_reply": "end",
            },
        )
    )
    return created


async def enrollment_of(api: httpx.AsyncClient, sequence_id: str, lead_id: str) -> dict[str, Any]:
    page = ok(await api.get(f"/sequences/{sequence_id}/enrollments", params={"limit": 500}))
    [found] = [e for e in page["items"] if e["lead_id"] == lead_id]
    return found  # type: ignore[no-any-return]


async def conversation_of(api: httpx.AsyncClient, lead_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(await api.get(f"/leads/{lead_id}/conversation"))["items"]
    return items


async def step_one_sent(
    stack: RunningStack, api: httpx.AsyncClient, sim: httpx.AsyncClient, device: dict[str, Any],
    lead: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Wait until the network accepted step 1 for `lead` and the API shows it sent."""

    async def sent() -> dict[str, Any] | None:
        if not await ledger_to(sim, device["id"], lead["phone"]):
            return None
        out = [e for e in await conversation_of(api, lead["id"]) if e["direction"] == "outbound"]
        done = [e for e in out if e["status"] in ("sent", "delivered", "read")]
        return done[0] if done else None

    return await advance_until(stack, sent, f"step 1 to reach {lead['name']}")


async def reply(
    sim: httpx.AsyncClient, lead: dict[str, Any], device: dict[str, Any], text: str
) -> None:
    ok(
        await sim.post(
            "/sim/v1/inbound", json={"from": lead["phone"], "to": device["phone"], "text": text}
        )
    )


async def campaign_reaches(
    stack: RunningStack,
    api: httpx.AsyncClient,
    sim: httpx.AsyncClient,
    name: str,
    tag: str,
    device: dict[str, Any],
    lead: dict[str, Any],
) -> dict[str, Any]:
    """Create a campaign for `tag` and wait until the network accepted its message for
    `lead` (through `device`): a barrier for what that device's lane held before it."""
    await quiet(sim, device)
    campaign: dict[str, Any] = ok(
        await api.post(
            "/campaigns",
            json={
                "name": name,
                "audience": {"tags": [tag]},
                "message": {"text": f"{name}, {{name}}!"},
                "pacing": PACING,
            },
        )
    )

    async def arrived() -> bool:
        return any(name in e["text"] for e in await ledger_to(sim, device["id"], lead["phone"]))

    await advance_until(stack, arrived, f"campaign {name} to reach {lead['name']}")
    return campaign


async def test_a_stop_reply_after_step_one_opts_the_lead_out_of_everything(
    stack: RunningStack, api: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    a = await connect_sim_device(api, sim, "Drip A", "+447911123501")
    b = await connect_sim_device(api, sim, "Drip B", "+447911123502")
    stopper = await create_lead(api, "+447911100401", "Stella", a["id"], ["drip"])
    neighbour = await create_lead(api, "+447911100402", "Ned", a["id"], ["drip"])
    other = await create_lead(api, "+447911100403", "Olga", b["id"], ["drip"])
    sequence = await two_step_sequence(api, "Welcome drip")
    ok(
        await api.post(
            f"/sequences/{sequence['id']}/enrollments", json={"lead_ids": [stopper["id"]]}
        )
    )
    step_one = await step_one_sent(stack, api, sim, a, stopper)

    await reply(sim, stopper, a, "STOP")

    async def opted_out() -> dict[str, Any] | None:
        found: dict[str, Any] = ok(await api.get(f"/leads/{stopper['id']}"))
        return found if found["opted_out"] else None

    await advance_until(stack, opted_out, "the STOP reply to opt Stella out")

    async def ended() -> dict[str, Any] | None:
        found = await enrollment_of(api, sequence["id"], stopper["id"])
        return found if found["status"] not in ("active", "paused") else None

    enrollment = await advance_until(stack, ended, "Stella's enrollment to end")
    await stack.advance_clock(LATER)
    campaign = await campaign_reaches(stack, api, sim, "Spring sale", "drip", a, neighbour)
    await campaign_reaches(stack, api, sim, "Spring sale", "drip", b, other)

    to_stopper = await ledger_to(sim, a["id"], stopper["phone"])
    assert [e["text"] for e in to_stopper] == ["Hi Stella, step 1"]
    assert enrollment["steps_sent"] == 1
    listed = ok(await api.get(f"/campaigns/{campaign['id']}/messages", params={"limit": 500}))
    assert sorted(m["lead_id"] for m in listed["items"]) == sorted([neighbour["id"], other["id"]])
    talk = await conversation_of(api, stopper["id"])
    assert [(e["direction"], e["text"]) for e in talk] == [
        ("outbound", "Hi Stella, step 1"),
        ("inbound", "STOP"),
    ]
    assert talk[0]["id"] == step_one["id"]
    assert talk[1]["in_reply_to"] == step_one["id"]


async def test_a_normal_reply_ends_the_enrollment_and_shows_in_the_conversation(
    stack: RunningStack, api: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    device = await connect_sim_device(api, sim, "Talk", "+447911123503")
    talker = await create_lead(api, "+447911100404", "Tom", device["id"], ["talk"])
    barrier = await create_lead(api, "+447911100405", "Bea", device["id"], ["later"])
    sequence = await two_step_sequence(api, "Onboarding")
    ok(
        await api.post(
            f"/sequences/{sequence['id']}/enrollments", json={"lead_ids": [talker["id"]]}
        )
    )
    step_one = await step_one_sent(stack, api, sim, device, talker)

    await reply(sim, talker, device, "Sounds good, how much is it?")

    async def ended() -> dict[str, Any] | str | None:
        found = await enrollment_of(api, sequence["id"], talker["id"])
        if found["status"] not in ("active", "paused"):
            return found
        talk = await conversation_of(api, talker["id"])
        return None if time.monotonic() < give_up else f"enrollment {found}, conversation {talk}"

    give_up = time.monotonic() + 60

    enrollment = await advance_until(stack, ended, "Tom's enrollment to end on his reply")
    await stack.advance_clock(LATER)
    await campaign_reaches(stack, api, sim, "Later news", "later", device, barrier)

    assert isinstance(enrollment, dict), enrollment
    assert (enrollment["status"], enrollment["reason"]) == ("completed", "reply")
    assert [e["text"] for e in await ledger_to(sim, device["id"], talker["phone"])] == [
        "Hi Tom, step 1"
    ]
    lead = ok(await api.get(f"/leads/{talker['id']}"))
    assert lead["opted_out"] is False
    talk = await conversation_of(api, talker["id"])
    assert [(e["direction"], e["text"]) for e in talk] == [
        ("outbound", "Hi Tom, step 1"),
        ("inbound", "Sounds good, how much is it?"),
    ]
    assert talk[0]["status"] in ("sent", "delivered", "read")
    assert talk[1]["status"] == "received"
    assert talk[0]["sequence_id"] == sequence["id"]
    assert talk[1]["in_reply_to"] == step_one["id"]
    assert talk[1]["sequence_id"] == sequence["id"]
