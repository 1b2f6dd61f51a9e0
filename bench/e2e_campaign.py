"""The measured part of the e2e run: one campaign to every lead with zero pacing, followed
from `POST /campaigns` until every message is read and the API's report says so."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from nats.errors import Error as NatsError

from bench.e2e_clients import Clients
from bench.e2e_sampler import Sample, sample
from bench.output import note
from bench.process_usage import Processes, Usage
from wacast.contracts.streams import MESSAGES

BODY = {
    "name": "bench e2e",
    "audience": {"status": "all"},
    "message": {"text": "Hi {name|there}, this is the e2e bench."},
    "pacing": {"min_seconds": 0, "max_seconds": 0},
}


def waiting(s: Sample) -> int:
    return s.counts.get("pending", 0) + s.counts.get("queued", 0)


def read_or_failed(s: Sample) -> int:
    return s.counts.get("read", 0) + s.counts.get("failed", 0)


@dataclass
class Campaign:
    clients: Clients
    leads: int
    every: float
    """Seconds between progress samples."""
    usage_every: float
    """Seconds between CPU and memory samples."""
    deadline: float
    """Seconds the campaign may take; then the figures are what it reached."""
    samples: list[Sample] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    missed_samples: int = 0

    async def run(self) -> dict[str, Any]:
        """Trigger, then sample until every message is read and the API report says so."""
        pids = self.clients.stack.pids()
        pids["bench"] = os.getpid()
        sent_before = int((await self.clients.sim("/sim/v1/stats"))["received"])
        ledger_before = int((await self.clients.sim("/sim/v1/ledger", limit=1))["received"])
        stream_before = await self.clients.stream_end(MESSAGES.key)
        triggered_at = datetime.now(UTC)
        started = time.monotonic()
        processes = Processes(pids, started, self.usage_every)
        sampling = asyncio.get_running_loop().create_task(processes.run())
        campaign_id = await self.trigger()
        self.samples = [await sample(self.clients, started, campaign_id)]
        done_sending, done_outcomes = await self.follow(started, campaign_id, sent_before)
        done = time.monotonic() - started
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
        self.usage = [*processes.usage, processes.take()]
        report = await self.api_report(campaign_id)
        last = self.samples[-1]
        first_send = await self.first_send(ledger_before, triggered_at)
        return {
            "campaign_id": campaign_id,
            "completed": read_or_failed(last) >= self.leads,
            "messages_done": sum(last.counts.values()) - waiting(last),
            "stream_before": stream_before,
            "seconds": done,
            "seconds_until_all_sent": done_sending,
            "seconds_until_all_outcomes_projected": done_outcomes,
            "time_to_first_send_s": first_send,
            "report_totals": report,
            "failed_by_reason": await self.failures(campaign_id),
            "sent": last.sent - sent_before,
        }

    async def trigger(self) -> str:
        response = await self.clients.api("POST", "/campaigns", json=BODY)
        if response.status_code != 201:
            raise RuntimeError(f"POST /campaigns: {response.status_code} {response.text}")
        return str(response.json()["id"])

    async def follow(
        self, started: float, campaign_id: str, sent_before: int
    ) -> tuple[float | None, float | None]:
        """Sample every `every` seconds until every message is read or failed (or the
        deadline passed); the times when all were sent and when none was waiting any more."""
        done_sending: float | None = None
        done_outcomes: float | None = None
        while True:
            await asyncio.sleep(self.every)
            try:
                s = await sample(self.clients, started, campaign_id)
            except (TimeoutError, NatsError, httpx.HTTPError, asyncpg.PostgresError) as exc:
                self.missed_samples += 1  # an overloaded machine: the next sample will do
                note(f"sample missed: {exc!r}")
                continue
            self.samples.append(s)
            if done_sending is None and s.sent - sent_before >= self.leads:
                done_sending = s.at
            total = sum(s.counts.values())
            if done_outcomes is None and total >= self.leads and not waiting(s):
                done_outcomes = s.at
            if total >= self.leads and read_or_failed(s) >= self.leads:
                return done_sending, done_outcomes
            if s.at > self.deadline:
                note(f"campaign not done after {s.at:.0f} s: stopping with what it reached")
                return done_sending, done_outcomes

    async def api_report(self, campaign_id: str) -> dict[str, Any]:
        response = await self.clients.api("GET", f"/campaigns/{campaign_id}/report")
        response.raise_for_status()
        totals: dict[str, Any] = response.json()["totals"]
        return totals

    async def first_send(self, after: int, triggered_at: datetime) -> float | None:
        """The simulator's time of the campaign's first send, less the trigger's."""
        page = await self.clients.sim("/sim/v1/ledger", after=after, limit=1)
        if not page["entries"]:
            return None
        at = datetime.fromisoformat(page["entries"][0]["at"])
        return (at - triggered_at).total_seconds()

    async def failures(self, campaign_id: str) -> dict[str, int]:
        async with self.clients.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT reason, sum(n)::bigint AS n FROM reports.campaign_counts "
                "WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'failed' GROUP BY reason",
                self.clients.tenant,
                campaign_id,
            )
        return {r["reason"]: int(r["n"]) for r in rows}
