"""Reaching URLs that users give without becoming a proxy into private networks (SSRF guard).

Used by media fetches and webhook deliveries alike:

- The host is resolved once and every address it resolves to must be public: private,
  loopback, link-local (cloud metadata at 169.254.169.254 included), shared (100.64/10),
  multicast, reserved and unspecified ranges are refused, IPv6 and IPv4-mapped alike.
- `WACAST_URL_ALLOWLIST` (comma-separated hosts or CIDRs) lets tests and private
  deployments reach some of them.
- Callers connect to the address that was checked (the URL's host only travels as `Host`
  and TLS server name), so a DNS answer that changes between check and connect (DNS
  rebinding) cannot move the request elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class UrlRefused(Exception):
    """The URL may not be reached (scheme, or where it points)."""


class Unresolvable(Exception):
    """The host has no address (now)."""


def allowlist_entries(raw: str) -> list[str]:
    """`WACAST_URL_ALLOWLIST` as entries; a malformed CIDR is a ValueError."""
    entries = [entry.strip().lower() for entry in raw.split(",") if entry.strip()]
    for entry in entries:
        if "/" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"url_allowlist entry {entry!r} is not a CIDR") from None
    return entries


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: list[str]) -> Allowlist:
        networks = tuple(ipaddress.ip_network(e, strict=False) for e in entries if "/" in e)
        hosts = frozenset(e.strip("[]") for e in entries if "/" not in e)
        return cls(hosts, networks)

    def allows(self, host: str, address: Address) -> bool:
        return (
            host.lower() in self.hosts
            or str(address) in self.hosts
            or any(address in net for net in self.networks)
        )


def forbidden(address: Address) -> str | None:
    """Why an address may not be reached, None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return forbidden(embedded)
    for name in ("loopback", "link_local", "multicast", "private", "reserved", "unspecified"):
        if getattr(address, f"is_{name}"):
            return f"{address} is a {name.replace('_', '-')} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unresolvable(f"cannot resolve {host}: {exc.strerror}") from None
    return [str(info[4][0]) for info in infos]


async def checked_address(
    host: str, port: int, allowlist: Allowlist, resolve: Resolver = system_resolver
) -> Address:
    """The address to connect to for `host`: every address it resolves to must be public
    or allowed (one bad answer refuses the host)."""
    addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await resolve(host, port)]
    if not addresses:
        raise Unresolvable(f"{host} resolves to no address")
    for address in addresses:
        reason = forbidden(address)
        if reason and not allowlist.allows(host, address):
            raise UrlRefused(f"{host} is not reachable from here: {reason}")
    return addresses[0]
