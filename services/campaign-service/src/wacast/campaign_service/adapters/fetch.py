"""Fetching media by URL without becoming a proxy into private networks (SSRF guard).

- Only `http` and `https`, on any port.
- The host is resolved once and every address it resolves to must be public: private,
  loopback, link-local (cloud metadata at 169.254.169.254 included), shared (100.64/10),
  multicast, reserved and unspecified ranges are refused, IPv6 and IPv4-mapped alike.
  `WACAST_URL_ALLOWLIST` (hosts or CIDRs) lets tests and private deployments reach some.
- The request goes to the address that was checked (the URL's host only travels as `Host`
  and TLS server name), so a DNS answer that changes between check and connect (DNS
  rebinding) cannot move it elsewhere.
- Redirects are followed by hand, each hop checked again, up to a limit.
- Connect and read timeouts, an overall deadline, and a size cap that depends on what the
  first bytes say the file is (`limit_for`): a too-large body is cut off, never buffered.
Bodies are spooled to a temporary file past 8 MiB.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import PurePosixPath
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from wacast.campaign_service.adapters.sniff import SNIFF_BYTES

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
REDIRECTS = (301, 302, 303, 307, 308)
SPOOL_BYTES = 8 * 1024 * 1024


class UrlRefused(Exception):
    """The URL may not be fetched (scheme, or where it points)."""


class FetchFailed(Exception):
    """The fetch was allowed but did not give a usable body."""


class TooLarge(FetchFailed):
    pass


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
        raise FetchFailed(f"cannot resolve {host}: {exc.strerror}") from None
    return [str(info[4][0]) for info in infos]


@dataclass
class Fetched:
    body: IO[bytes]
    size: int
    head: bytes
    url: str
    filename: str


class Fetcher:
    def __init__(
        self,
        allowlist: Allowlist,
        *,
        connect_timeout: float = 5.0,
        total_timeout: float = 30.0,
        max_redirects: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allowlist = allowlist
        self.timeout = httpx.Timeout(connect_timeout * 2, connect=connect_timeout)
        self.total_timeout = total_timeout
        self.max_redirects = max_redirects
        self.transport = transport
        self.resolve = resolver

    async def check(self, url: str) -> tuple[httpx.URL, str]:
        """The URL to request (host replaced by its checked address) and the original host."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UrlRefused(f"not a URL: {exc}") from None
        if parsed.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs are fetched, not {parsed.scheme or '?'}")
        host = parsed.host
        if not host:
            raise UrlRefused("the URL has no host")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await self.resolve(host, port)]
        if not addresses:
            raise FetchFailed(f"{host} resolves to no address")
        for address in addresses:
            reason = forbidden(address)
            if reason and not self.allowlist.allows(host, address):
                raise UrlRefused(f"{host} is not reachable from here: {reason}")
        return parsed.copy_with(host=str(addresses[0])), host

    async def fetch(self, url: str, limit_for: Callable[[bytes], int]) -> Fetched:
        try:
            async with asyncio.timeout(self.total_timeout):
                return await self._follow(url, limit_for)
        except TimeoutError:
            raise FetchFailed(f"the fetch took longer than {self.total_timeout:.0f} s") from None
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from None

    async def _follow(self, url: str, limit_for: Callable[[bytes], int]) -> Fetched:
        async with httpx.AsyncClient(
            transport=self.transport, timeout=self.timeout, follow_redirects=False
        ) as client:
            for _ in range(self.max_redirects + 1):
                target, host = await self.check(url)
                request = client.build_request(
                    "GET",
                    target,
                    headers={"Host": _host_header(url, host), "Accept": "*/*"},
                    extensions={"sni_hostname": host},
                )
                response = await client.send(request, stream=True)
                try:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise FetchFailed(f"the server answered {response.status_code}")
                    return await _read(response, url, limit_for)
                finally:
                    await response.aclose()
        raise FetchFailed(f"more than {self.max_redirects} redirects")


def _host_header(url: str, host: str) -> str:
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1]
    return netloc or host


async def _read(response: httpx.Response, url: str, limit_for: Callable[[bytes], int]) -> Fetched:
    declared = int(response.headers.get("content-length", "0") or 0)
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    head = b""
    size = 0
    limit: int | None = None
    try:
        async for chunk in response.aiter_bytes():
            if limit is None and len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            size += len(chunk)
            if limit is None and len(head) >= SNIFF_BYTES:
                limit = _checked(limit_for(head), declared)
            if limit is not None and size > limit:
                raise TooLarge(f"larger than {limit} bytes")
            body.write(chunk)
        if limit is None:
            _checked(limit_for(head), declared)
    except BaseException:
        body.close()
        raise
    body.seek(0)
    return Fetched(body, size, head, url, _filename(response, url))


def _checked(limit: int, declared: int) -> int:
    if declared > limit:
        raise TooLarge(f"declared {declared} bytes, more than {limit}")
    return limit


def _filename(response: httpx.Response, url: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
        if name:
            return PurePosixPath(name).name
    return PurePosixPath(unquote(urlsplit(url).path)).name
