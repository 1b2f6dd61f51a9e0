"""The shared e2e stack: a fresh tenant pairs a simulator device by QR, and another tenant
(the dev tenant) does not see it."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import api_client, connect_sim_device, ok
from wacast.cli.stackrun import RunningStack


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_fresh_tenant_pairs_a_sim_device_that_no_other_tenant_sees(
    stack: RunningStack, api: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    device = await connect_sim_device(api, sim, "Front desk", "+447911123456")
    assert device["status"] == "connected"
    assert device["phone"] == "+447911123456"
    listed = ok(await api.get("/devices"))
    assert [d["id"] for d in listed["items"]] == [device["id"]]
    async with api_client(stack) as dev:
        assert (await dev.get(f"/devices/{device['id']}")).status_code == 404
        assert device["id"] not in [d["id"] for d in ok(await dev.get("/devices"))["items"]]
