"""Tenants and keys: the api-gateway's own commands, the dev tenant's start-up hook, and the
`wacast tenants` commands."""

from __future__ import annotations

import asyncio
import uuid

import typer
from typer.testing import CliRunner

from wacast.api_gateway.tenants import ensure_dev_tenant
from wacast.cli import commands_tenants
from wacast.cli.main import global_options
from wacast.contracts import tenants as tn
from wacast.contracts.commands import CreateTenant, IssueApiKey, RevokeApiKey

from .conftest import Caller, Stack


def issue(tenant_id: str, key: str) -> IssueApiKey:
    return IssueApiKey(
        tenant_id=tenant_id,
        key_id=tn.key_id_of(key),
        key_hash=tn.key_hash(key),
        name="k",
        prefix=tn.key_display_prefix(key),
    )


async def test_tenant_commands_refuse_what_would_clash_or_cross_tenants(
    stack: Stack, acme: Caller, umbrella: Caller
) -> None:
    tenants = stack.gw.tenants
    key = tn.new_api_key()

    twice = await tenants.handle(CreateTenant(tenant_id=acme.tenant_id, name="again"))
    nobody = await tenants.handle(issue("nobody-here", key))
    bad_id = await tenants.handle(CreateTenant(tenant_id="bad id!", name="x"))
    first = await tenants.handle(issue(acme.tenant_id, key))
    same = await tenants.handle(issue(acme.tenant_id, key))
    stolen = await tenants.handle(issue(umbrella.tenant_id, key))
    cross = await tenants.handle(
        RevokeApiKey(tenant_id=umbrella.tenant_id, key_id=tn.key_id_of(key))
    )
    revoked = await tenants.handle(RevokeApiKey(tenant_id=acme.tenant_id, key_id=tn.key_id_of(key)))
    again = await tenants.handle(RevokeApiKey(tenant_id=acme.tenant_id, key_id=tn.key_id_of(key)))

    assert twice.problem is not None
    assert twice.problem.status == 409
    assert nobody.problem is not None
    assert nobody.problem.status == 404
    assert bad_id.problem is not None
    assert bad_id.problem.status == 422
    assert first.ok
    assert same.ok
    assert same.seq == first.seq
    assert stolen.problem is not None
    assert stolen.problem.status == 409
    assert cross.problem is not None
    assert cross.problem.status == 404
    assert revoked.ok
    assert again.ok
    assert again.seq == revoked.seq


async def test_a_key_works_the_moment_it_is_issued(stack: Stack, acme: Caller) -> None:
    key = tn.new_api_key()
    assert (await stack.gw.tenants.handle(issue(acme.tenant_id, key))).ok

    response = await stack.client(key).get("/api/v1/devices")

    assert response.status_code == 200


async def test_the_dev_tenant_hook_is_idempotent_and_takes_a_hand_made_key(stack: Stack) -> None:
    tenant = f"dev{uuid.uuid4().hex[:6]}"
    chosen = "my-dev-key-123"

    first = await ensure_dev_tenant(stack.gw.tenants, tenant, chosen)
    again = await ensure_dev_tenant(stack.gw.tenants, tenant, chosen)
    random = await ensure_dev_tenant(stack.gw.tenants, tenant, "")

    assert first == again == chosen
    assert random.startswith("wk_")
    for key in (chosen, random):
        response = await stack.client(key).get("/api/v1/devices")
        assert response.status_code == 200, key
    assert stack.gw.keys.tenants[tenant] == tenant


def cli() -> typer.Typer:
    """The `wacast` command with the tenants commands, as main.py registers them."""
    app = typer.Typer()
    app.callback()(global_options)
    app.add_typer(commands_tenants.app, name="tenants")
    return app


async def test_wacast_tenants_create_prints_a_key_that_works_and_keys_are_listed_and_revoked(
    stack: Stack, nats_url: str
) -> None:
    env = {"WACAST_NATS_URL": nats_url, "WACAST_NAMESPACE": stack.topology.prefix}
    tenant = f"cli-{uuid.uuid4().hex[:6]}"
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, str]:
        done = runner.invoke(cli(), list(args), env=env)
        return done.exit_code, done.stdout, done.stderr

    created = await asyncio.to_thread(invoke, "tenants", "create", "Acme Corp", "--id", tenant)
    key = created[1].strip()
    works = await stack.client(key).get("/api/v1/devices")
    listed = await asyncio.to_thread(invoke, "tenants", "keys", tenant)
    revoked = await asyncio.to_thread(invoke, "tenants", "revoke", tenant, tn.key_id_of(key))
    refused = await stack.client(key).get("/api/v1/devices")
    twice = await asyncio.to_thread(invoke, "tenants", "create", "Acme Corp", "--id", tenant)

    assert created[0] == 0, created
    assert key.startswith("wk_")
    assert works.status_code == 200
    assert listed[0] == 0
    assert tn.key_id_of(key) in listed[1]
    assert revoked[0] == 0
    assert refused.status_code == 401
    assert twice[0] == 3
    assert "exists" in twice[2]
    assert commands_tenants.tenant_id_of("Acme Corp!") == "acme-corp"
