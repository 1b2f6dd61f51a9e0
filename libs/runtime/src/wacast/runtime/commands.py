"""Commands and queries over NATS request/reply.

An owner serves its commands on `<prefix>.cmd.<owner>.>` in a queue group (any replica may
answer); the reply is always a `Reply`: the decision, or a `Problem` with the reason. Queries
work the same way on `<prefix>.qry.<name>` with their own request and response structs.
Malformed requests get a problem reply, never silence; a handler that crashes answers 500
and the subscriber goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from opentelemetry.trace import SpanKind

from wacast.contracts.base import Command, Problem, Reply, encode
from wacast.contracts.commands import command_subject
from wacast.contracts.subjects import Topology
from wacast.runtime.tracing import inject, start_span, start_span_from_headers

log = logging.getLogger("wacast.commands")

C = TypeVar("C", bound=Command)
Q = TypeVar("Q", bound=msgspec.Struct)

reply_decoder = msgspec.json.Decoder(Reply)


def problem(code: str, title: str, status: int = 400, detail: str = "", **extra: Any) -> Reply:
    errors = [extra] if extra else []
    return Reply(
        ok=False,
        problem=Problem(code=code, title=title, status=status, detail=detail, errors=errors),
    )


DETAIL_LIMIT = 500
"""Characters of a decoding error kept in a problem: msgspec quotes the offending value, and
a reply quoting a 4 MB value would not fit in a NATS message (the caller would time out)."""


def invalid(exc: Exception) -> Reply:
    detail = str(exc)
    if len(detail) > DETAIL_LIMIT:
        detail = detail[:DETAIL_LIMIT] + "…"
    return problem("invalid_request", "The request is not valid", 422, detail)


def serve_commands(
    broker: NatsBroker,
    topology: Topology,
    owner: str,
    union: Any,
    handle: Callable[[Any], Awaitable[Reply]],
    *,
    max_workers: int = 1,
) -> None:
    """Answer every command of `owner` with `handle`'s decision, `max_workers` at a time
    (commands on one aggregate may then race: appends with an expected sequence decide)."""
    decoder: msgspec.json.Decoder[Command] = msgspec.json.Decoder(union)

    @broker.subscriber(
        f"{topology.prefix}.cmd.{owner}.>",
        queue=owner,
        title=f"commands of {owner}",
        max_workers=max_workers,
    )
    async def on_command(msg: NatsMessage) -> bytes:
        name = msg.raw_message.subject.rpartition(".")[2]
        with start_span_from_headers(f"command {name}", msg.headers, kind=SpanKind.SERVER):
            return await answer(msg)

    async def answer(msg: NatsMessage) -> bytes:
        try:
            command = decoder.decode(msg.body)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return encode(invalid(exc))
        try:
            return encode(await handle(command))
        except Exception:
            log.exception("command %s failed", type(command).__name__)
            return encode(problem("internal", "The command could not be carried out", 500))


def serve_query(
    broker: NatsBroker,
    topology: Topology,
    name: str,
    request_type: type[Q],
    handle: Callable[[Q], Awaitable[msgspec.Struct | Reply]],
    *,
    queue: str,
    max_workers: int = 1,
) -> None:
    decoder = msgspec.json.Decoder(request_type)

    @broker.subscriber(
        topology.query(name), queue=queue, title=f"query {name}", max_workers=max_workers
    )
    async def on_query(msg: NatsMessage) -> bytes:
        with start_span_from_headers(f"query {name}", msg.headers, kind=SpanKind.SERVER):
            return await answer(msg)

    async def answer(msg: NatsMessage) -> bytes:
        try:
            request = decoder.decode(msg.body)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return encode(invalid(exc))
        try:
            return encode(await handle(request))
        except Exception:
            log.exception("query %s failed", name)
            return encode(problem("internal", "The query could not be answered", 500))


class Requester:
    """The sending side: commands to their owner, queries to whoever answers them."""

    def __init__(self, nc: Client, topology: Topology, timeout: float = 10.0) -> None:
        self.nc = nc
        self.topology = topology
        self.timeout = timeout

    async def send(self, command: Command) -> Reply:
        subject = command_subject(self.topology, type(command))
        data = await self._request(subject, encode(command))
        if isinstance(data, Reply):
            return data
        return reply_decoder.decode(data)

    async def query(self, name: str, request: msgspec.Struct, response_type: type[Q]) -> Q | Reply:
        data = await self._request(self.topology.query(name), encode(request))
        if isinstance(data, Reply):
            return data
        try:
            return msgspec.json.decode(data, type=response_type)
        except msgspec.ValidationError:
            return reply_decoder.decode(data)

    async def _request(self, subject: str, payload: bytes) -> bytes | Reply:
        name = subject.removeprefix(f"{self.topology.prefix}.")
        with start_span(f"request {name}", kind=SpanKind.CLIENT):
            return await self._request_traced(subject, payload)

    async def _request_traced(self, subject: str, payload: bytes) -> bytes | Reply:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + min(self.timeout, NO_RESPONDERS_RETRY_SECONDS)
        pause = 0.02
        while True:
            try:
                msg = await self.nc.request(
                    subject, payload, timeout=self.timeout, headers=inject()
                )
            except NoRespondersError:
                if loop.time() + pause > give_up:
                    return problem("unavailable", "The owning service is not running", 503)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.2)
                continue
            except NatsTimeout:
                return problem("timeout", "The owning service did not answer in time", 504)
            return msg.data


NO_RESPONDERS_RETRY_SECONDS = 1.0
"""How long a request nobody answered is tried again before the reply is 503. Nobody got
it, so another try cannot act twice; and nats-server can report no responders for a moment
after an owner (re)started subscribes, even once its connection was flushed (about 1 in 100
starts on a loaded machine)."""
