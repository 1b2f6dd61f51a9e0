"""Sending due deliveries: one worker per endpoint, in order per resource.

The delivery log is the queue. A loop finds endpoints with due deliveries and starts a
worker for each that has none; a worker reads a page of its endpoint's due deliveries (only
the first pending one of each resource, so one message's, device's or campaign's events
arrive in the order they happened), sends them `webhook_endpoint_concurrency` at a time
(within `webhook_concurrency` for all endpoints), records each outcome and waits until the
tables hold them before the next page. A slow or failing endpoint only slows its own worker.

An outcome is appended expecting the delivery subject's last sequence, so a replay or a
second sender that got there first wins and this result is dropped. A try whose HTTP answer
came but whose outcome was not recorded (a crash in between) is sent again with the same
`webhook-id`: at least once, and receivers deduplicate by the id.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import msgspec
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Histogram

from wacast.contracts import webhooks as wh
from wacast.contracts.base import Event
from wacast.contracts.streams import BY_KEY, WEBHOOKS, codec
from wacast.runtime.eventstore import Conflict
from wacast.runtime.projection import TRANSIENT
from wacast.webhook_service import signing
from wacast.webhook_service.adapters.http import Outcome
from wacast.webhook_service.adapters.lookups import Due
from wacast.webhook_service.core import Core
from wacast.webhook_service.directory import Endpoint
from wacast.webhook_service.retry import backoff

log = logging.getLogger("wacast.webhooks")

TRIES = Counter("wacast_webhook_tries_total", "Webhook delivery tries by outcome", ["outcome"])
TRY_SECONDS = Histogram("wacast_webhook_try_seconds", "Time of one webhook delivery try")
IDLE_WAIT = 1.0
"""Longest sleep of the loop without news (a due retry is found within it)."""


class Dispatcher:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.slots = asyncio.Semaphore(core.settings.webhook_concurrency)
        self.workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.worker_ended = asyncio.Event()

    async def run(self) -> None:
        """Start due workers, then sleep until the tables change, a worker ends (its
        endpoint may have a retry due soon) or the next known due time."""
        runner = self.core.runner
        try:
            while True:
                position = runner.position(WEBHOOKS.key)
                self.worker_ended.clear()
                try:
                    wait = await self._start_due()
                except TRANSIENT as exc:
                    log.warning("cannot read due deliveries now (%r); trying again", exc)
                    wait = IDLE_WAIT
                news: list[asyncio.Task[Any]] = [
                    asyncio.create_task(runner.wait_until(WEBHOOKS.key, position + 1, wait)),
                    asyncio.create_task(self.worker_ended.wait()),
                ]
                try:
                    await asyncio.wait(news, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in news:
                        task.cancel()
                    await asyncio.gather(*news, return_exceptions=True)
        finally:
            for task in self.workers.values():
                task.cancel()
            await asyncio.gather(*self.workers.values(), return_exceptions=True)

    async def _start_due(self) -> float:
        """Start workers of endpoints with due deliveries; seconds until the next is due."""
        now = self.core.clock.now()
        wait = IDLE_WAIT
        for work in await self.core.lookups.work():
            key = (work.tenant_id, work.webhook_id)
            if key in self.workers:
                continue
            if work.due_at <= now:
                task = asyncio.create_task(self._serve(*key), name=f"webhook {key[1]}")
                self.workers[key] = task
                task.add_done_callback(lambda _, key=key: self._ended(key))  # type: ignore[misc]
            else:
                wait = min(wait, (work.due_at - now).total_seconds())
        return max(wait, 0.01)

    def _ended(self, key: tuple[str, str]) -> None:
        self.worker_ended.set()
        task = self.workers.pop(key, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("webhook worker %s failed", key[1], exc_info=task.exception())

    async def _serve(self, tenant_id: str, webhook_id: str) -> None:
        core = self.core
        per_endpoint = asyncio.Semaphore(core.settings.webhook_endpoint_concurrency)
        while True:
            endpoint = core.directory.get(tenant_id, webhook_id)
            if endpoint is None:
                return
            due = await core.lookups.due(
                tenant_id, webhook_id, core.clock.now(), core.settings.webhook_batch
            )
            if not due:
                return
            seqs = await asyncio.gather(*(self._deliver(endpoint, d, per_endpoint) for d in due))
            last = max(seqs)
            if last:
                await core.runner.wait_until(WEBHOOKS.key, last, timeout=30)

    async def _deliver(self, endpoint: Endpoint, due: Due, per_endpoint: asyncio.Semaphore) -> int:
        """One try; the sequence of the recorded outcome (0 when another got there first)."""
        async with per_endpoint, self.slots:
            source = await self._source(due)
            if source is None:
                outcome = Outcome(0, "the source event is gone (erased or expired)", 0)
            else:
                outcome = await self._post(endpoint, due, source)
        return await self._record(due, outcome, final=source is None)

    async def _source(self, due: Due) -> Event | None:
        spec = BY_KEY[due.source_stream]
        try:
            msg = await self.core.store.js.get_msg(
                spec.name(self.core.topology), seq=due.source_seq, direct=True
            )
        except NotFoundError:
            return None
        return codec(spec).decode(msg.data or b"")

    async def _post(self, endpoint: Endpoint, due: Due, source: Event) -> Outcome:
        event_id = wh.event_id(due.source_stream, due.source_seq)
        body = msgspec.json.encode(
            {
                "id": event_id,
                "type": due.event_type,
                "timestamp": source.occurred_at,
                "tenant_id": source.tenant_id,
                "data": wh.payload_data(source),
            }
        )
        now = int(self.core.clock.now().timestamp())
        headers = signing.headers(endpoint.secret, event_id, now, body)
        with TRY_SECONDS.time():
            outcome = await self.core.poster.post(endpoint.url, body, headers)
        TRIES.labels("ok" if outcome.ok else "failed").inc()
        return outcome

    async def _record(self, due: Due, outcome: Outcome, *, final: bool) -> int:
        core = self.core
        settings = core.settings
        now = core.clock.now()
        attempt = due.attempts + 1
        ref: dict[str, Any] = {
            "tenant_id": due.tenant_id,
            "occurred_at": now,
            "delivery_id": due.delivery_id,
            "webhook_id": due.webhook_id,
            "source_stream": due.source_stream,
            "source_seq": due.source_seq,
            "event_type": due.event_type,
        }
        event: Event
        if outcome.ok:
            event = wh.WebhookDelivered(
                **ref,
                attempt=attempt,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
            )
        elif final or attempt >= settings.webhook_max_attempts:
            TRIES.labels("dead").inc()
            event = wh.WebhookDeliveryDead(
                **ref, attempts=attempt, status_code=outcome.status_code, error=outcome.error
            )
        else:
            delay = backoff(
                attempt, settings.webhook_retry_base_seconds, settings.webhook_retry_max_seconds
            )
            event = wh.WebhookDeliveryAttempted(
                **ref,
                attempt=attempt,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                retry_at=now + timedelta(seconds=delay),
            )
        try:
            appended = await core.store.append(
                event.subject(core.topology),
                [event],
                msg_id=f"{due.delivery_id}-{due.last_seq}",
                expected=due.last_seq,
            )
        except Conflict:
            return 0
        return appended.seq
