"""Fetching media by URL without becoming a proxy into private networks (SSRF guard).

- Only `http` and `https`, on any port.
- Where the URL points is checked by `wacast.runtime.urlguard` (public addresses only,
  unless `WACAST_URL_ALLOWLIST` admits them), and the request goes to the address that
  was checked, so DNS rebinding cannot move it elsewhere.
- Redirects are followed by hand, each hop checked again, up to a limit.
- Connect and read timeouts, an overall deadline, and a size cap that depends on what the
  first bytes say the file is (`limit_for`): a too-large body is cut off, never buffered.
Bodies are spooled to a temporary file past 8 MiB.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import PurePosixPath
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from wacast.campaign_service.adapters.sniff import SNIFF_BYTES
from wacast.runtime.urlguard import (
    Allowlist,
    Resolver,
    Unresolvable,
    UrlRefused,
    checked_address,
    system_resolver,
)

__all__ = [
    "Allowlist",
    "FetchFailed",
    "Fetcher",
    "Resolver",
    "TooLarge",
    "UrlRefused",
    "system_resolver",
]
REDIRECTS = (301, 302, 303, 307, 308)
SPOOL_BYTES = 8 * 1024 * 1024


class FetchFailed(Exception):
    """The fetch was allowed but did not give a usable body."""


class TooLarge(FetchFailed):
    pass


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
        try:
            address = await checked_address(host, port, self.allowlist, self.resolve)
        except Unresolvable as exc:
            raise FetchFailed(str(exc)) from None
        return parsed.copy_with(host=str(address)), host

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
