"""POSTing one signed payload to an endpoint, SSRF-guarded.

Every try resolves the host again and connects to the checked address (the URL's host
travels as `Host` and TLS server name only), so an endpoint whose DNS later points inside
the network is refused then, not just at creation. Redirects are not followed (a 3xx is a
failed try), the whole try has one deadline, and the answer's body is never read.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from wacast.runtime.urlguard import (
    Allowlist,
    Resolver,
    Unresolvable,
    UrlRefused,
    checked_address,
    system_resolver,
)

USER_AGENT = "wacast-webhooks/1"
MAX_ERROR = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    """0: no HTTP answer (see `error`)."""
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class Poster:
    def __init__(
        self,
        allowlist: Allowlist,
        *,
        timeout: float,
        max_connections: int,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allowlist = allowlist
        self.timeout = timeout
        self.resolve = resolver
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=30),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def check(self, url: str) -> None:
        """Refuse (UrlRefused, Unresolvable) a URL that points where we may not go."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise UrlRefused(f"not a URL: {exc}") from None
        await checked_address(parsed.host, _port(parsed), self.allowlist, self.resolve)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                status = await self._post(url, body, headers)
        except TimeoutError:
            return _failed(f"no answer within {self.timeout:g} s", started)
        except (UrlRefused, Unresolvable) as exc:
            return _failed(str(exc), started)
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            return _failed(f"{type(exc).__name__}: {exc}", started)
        return Outcome(status, "" if 200 <= status < 300 else f"HTTP {status}", _ms(started))

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        parsed = httpx.URL(url)
        host = parsed.host
        address = await checked_address(host, _port(parsed), self.allowlist, self.resolve)
        request = self.client.build_request(
            "POST",
            parsed.copy_with(host=str(address)),
            content=body,
            headers={
                **headers,
                "Host": urlsplit(url).netloc,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            extensions={"sni_hostname": host},
        )
        response = await self.client.send(request, stream=True)
        await response.aclose()
        return response.status_code


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _failed(error: str, started: float) -> Outcome:
    return Outcome(0, error[:MAX_ERROR], _ms(started))
