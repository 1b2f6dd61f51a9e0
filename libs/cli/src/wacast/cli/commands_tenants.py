"""`wacast tenants create NAME`, `keys`, `issue-key`, `revoke`: tenants and their API keys.

The api-gateway owns tenants and keys (commands of owner `tenants`), so it must be running.
A key is made here, shown once on stdout (so that `KEY=$(wacast tenants create acme)`
works) and only its sha256 travels; everything else goes to stderr.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from wacast.cli.commands_common import CliError, Options, err, nats_session, options, run
from wacast.contracts import queries as q
from wacast.contracts import tenants as tn
from wacast.contracts.base import Command, Reply
from wacast.contracts.commands import CreateTenant, IssueApiKey, RevokeApiKey
from wacast.runtime.commands import Requester

app = typer.Typer(
    help="Tenants and their API keys (the api-gateway must run).", no_args_is_help=True
)


def tenant_id_of(name: str) -> str:
    """A readable id from a name: `Acme Corp` -> `acme-corp`."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")[:64]
    return slug or f"t-{secrets.token_hex(4)}"


def refused(reply: Reply) -> CliError:
    problem = reply.problem
    if problem is None:
        return CliError("the api-gateway refused without saying why")
    if problem.status >= 500:
        return CliError(f"{problem.title} (is the api-gateway running?)", 1)
    text = f"{problem.title}: {problem.detail}" if problem.detail else problem.title
    return CliError(text, 3 if problem.status in (404, 409) else 2)


async def send(opts: Options, *commands: Command) -> list[Reply]:
    async with nats_session(opts) as nc:
        requester = Requester(nc, opts.topology)
        replies = []
        for command in commands:
            reply = await requester.send(command)
            if not reply.ok:
                raise refused(reply)
            replies.append(reply)
        return replies


def issue(tenant_id: str, name: str) -> tuple[str, IssueApiKey]:
    key = tn.new_api_key()
    return key, IssueApiKey(
        tenant_id=tenant_id,
        key_id=tn.key_id_of(key),
        key_hash=tn.key_hash(key),
        name=name,
        prefix=tn.key_display_prefix(key),
    )


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The tenant's name")],
    tenant_id: Annotated[
        str | None, typer.Option("--id", help="Its id (default: made from the name)")
    ] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of windows and caps")] = "UTC",
    region: Annotated[str, typer.Option(help="Region of phones without a country code")] = "US",
) -> None:
    """Create a tenant and its first API key; prints the key (shown only this once)."""
    ident = tenant_id or tenant_id_of(name)
    key, first = issue(ident, "default")
    create = CreateTenant(
        tenant_id=ident, name=name, timezone=timezone, default_region=region.upper()
    )
    run(send(options(ctx), create, first))
    err(f"tenant {ident} created; its API key (shown only now):")
    typer.echo(key)


@app.command("issue-key")
def issue_command(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
) -> None:
    """Issue another API key for a tenant; prints it (shown only this once)."""
    key, command = issue(tenant_id, name)
    run(send(options(ctx), command))
    err(f"key {command.key_id} issued for {tenant_id} (shown only now):")
    typer.echo(key)


@app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id")],
    key_id: Annotated[str, typer.Argument(help="The key's id (see `wacast tenants keys`)")],
) -> None:
    """Revoke an API key: it stops working at once."""
    run(send(options(ctx), RevokeApiKey(tenant_id=tenant_id, key_id=key_id)))
    err(f"key {key_id} revoked")


@app.command("keys")
def keys_command(
    ctx: typer.Context, tenant_id: Annotated[str, typer.Argument(help="The tenant's id")]
) -> None:
    """List a tenant's API keys (never their secrets)."""
    page = run(list_keys(options(ctx), tenant_id))
    table = Table("id", "name", "prefix", "created", "expires", "revoked")
    for k in page.items:
        table.add_row(
            k.id,
            k.name,
            k.prefix,
            k.created_at.isoformat(timespec="seconds"),
            k.expires_at.isoformat(timespec="seconds") if k.expires_at else "",
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
        )
    Console().print(table)


async def list_keys(opts: Options, tenant_id: str) -> q.ApiKeyPage:
    async with nats_session(opts) as nc:
        found = await Requester(nc, opts.topology).query(
            q.API_KEYS, q.Query(tenant_id=tenant_id), q.ApiKeyPage
        )
    if isinstance(found, Reply):
        raise refused(found)
    return found
