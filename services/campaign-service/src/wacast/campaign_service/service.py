"""The one place that wires the campaign-service together (the service host, the tests and
the bench all build it here): adapters, command handlers, background loops, consumers.

Background work of a replica:
- two projection runners into its private tables (`campaigns_private`, `campaigns_outcomes`);
- the scheduler (due campaigns trigger) and completion (completed, finished);
- fan-outs and imports as jobs, started where they are decided and taken over by any
  replica when nobody advances them (`Adopter`, every `adopt_seconds`);
- durable consumers: device deletions cascade to leads; campaign status to send controls;
  what leads write, to opt-outs by keyword.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import httpx
from faststream.nats import NatsBroker
from nats.aio.client import Client

from wacast.campaign_service.adapters import outcomes, private
from wacast.campaign_service.adapters.fetch import Allowlist, Fetcher, Resolver, system_resolver
from wacast.campaign_service.adapters.objects import MediaObjects
from wacast.campaign_service.adapters.readmodel import ReadModel
from wacast.campaign_service.campaigns import CampaignCommands
from wacast.campaign_service.completion import Completion
from wacast.campaign_service.context import Deps
from wacast.campaign_service.fanout import Fanout
from wacast.campaign_service.handlers import Handlers
from wacast.campaign_service.imports import Imports
from wacast.campaign_service.jobs import Adopter, Jobs, Signal, Work
from wacast.campaign_service.leads import LeadCommands
from wacast.campaign_service.media import MediaCommands
from wacast.campaign_service.optout import OptOutKeywords
from wacast.campaign_service.reactions import DeviceCascade, SendControls
from wacast.campaign_service.schedule import Scheduler
from wacast.campaign_service.settings import Settings, allowlist_entries
from wacast.contracts.base import Command, Reply
from wacast.contracts.commands import CampaignCommand
from wacast.contracts.streams import CAMPAIGNS, DEVICES, MESSAGES
from wacast.contracts.subjects import Topology
from wacast.runtime.clock import Clock
from wacast.runtime.commands import serve_commands
from wacast.runtime.consumer import consume_events
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.projection import ProjectionRunner, stop_if_cancelled

log = logging.getLogger("wacast.campaigns")


class CampaignService:
    def __init__(
        self,
        *,
        nc: Client,
        pool: asyncpg.Pool,
        topology: Topology,
        clock: Clock,
        settings: Settings,
        dead_letters: DeadLetters,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.topology = topology
        self.settings = settings
        self.dead_letters = dead_letters
        self.campaigns_changed, self.outcomes_changed = Signal(), Signal()
        self.private = private.PrivateProjection(self.campaigns_changed.fire)
        self.outcomes = outcomes.OutcomesProjection(self.outcomes_changed.fire)
        self.runners = [
            ProjectionRunner(
                p,
                pool=pool,
                nc=nc,
                topology=topology,
                schema=p.name,
                dead_letters=dead_letters,
                idle_wait=0.2,
            )
            for p in (self.private, self.outcomes)
        ]
        js = nc.jetstream()
        fetcher = Fetcher(
            Allowlist.parse(allowlist_entries(settings.url_allowlist)),
            connect_timeout=settings.fetch_connect_timeout_seconds,
            total_timeout=settings.fetch_timeout_seconds,
            max_redirects=settings.fetch_max_redirects,
            transport=transport,
            resolver=resolver,
        )
        self.deps = Deps(
            store=EventStore(nc, topology),
            topology=topology,
            clock=clock,
            settings=settings,
            reads=ReadModel(pool, js, topology),
            objects=MediaObjects(js, topology),
            fetcher=fetcher,
        )
        self.jobs = Jobs()
        self.campaigns = CampaignCommands(self.deps, started=self.start_fanout)
        self.fanout = Fanout(self.deps, self.campaigns, pool)
        self.leads = LeadCommands(self.deps)
        self.imports = Imports(self.deps, self.leads, self.jobs)
        self.handlers = Handlers(self.leads, MediaCommands(self.deps), self.campaigns, self.imports)
        self.scheduler = Scheduler(self.deps, self.campaigns, self.campaigns_changed)
        self.completion = Completion(
            self.deps, self.campaigns, self.campaigns_changed, self.outcomes_changed
        )
        self.adopters = [
            Adopter(
                self.jobs,
                "fanout",
                self.deps.reads.unfinished_fanouts,
                self._fanout_position,
                self._fanout_work,
            ),
            Adopter(
                self.jobs,
                "import",
                self.deps.reads.unfinished_imports,
                self.imports.position,
                self._import_work,
            ),
        ]
        self.cascade = DeviceCascade(self.deps)
        self.controls = SendControls(self.deps)
        self.keywords = OptOutKeywords(self.deps, self.leads)

    async def handle(self, command: Command) -> Reply:
        return await self.handlers.handle(command)

    def start_fanout(self, tenant_id: str, campaign_id: str) -> None:
        self.jobs.start(
            ("fanout", tenant_id, campaign_id), self._fanout_work(tenant_id, campaign_id)
        )

    def _fanout_work(self, tenant_id: str, campaign_id: str) -> Work:
        return lambda: self.fanout.run(tenant_id, campaign_id)

    def _import_work(self, tenant_id: str, import_id: str) -> Work:
        return lambda: self.imports.run(tenant_id, import_id)

    async def _fanout_position(self, tenant_id: str, campaign_id: str) -> int:
        subject = self.topology.fanout(tenant_id, campaign_id)
        return await self.deps.store.last_seq(MESSAGES, subject)

    def register(self, broker: NatsBroker) -> None:
        """Commands, and the durable consumers of device, campaign and inbound events."""
        serve_commands(
            broker,
            self.topology,
            "campaigns",
            CampaignCommand,
            self.handle,
            max_workers=self.settings.command_workers,
        )
        for spec, kind, durable, handle in (
            (DEVICES, "device", "campaigns-device-cascade", self.cascade.handle),
            (CAMPAIGNS, "campaign", "campaigns-send-controls", self.controls.handle),
            (MESSAGES, "inbound", "campaigns-opt-out-keywords", self.keywords.handle),
        ):
            consume_events(
                broker,
                self.topology,
                self.dead_letters,
                spec=spec,
                subject=self.topology.all_of(kind),
                durable=durable,
                handle=handle,
            )

    async def prepare(self) -> None:
        """Create the private tables before anything reads them."""
        for runner in self.runners:
            await runner.prepare()

    async def run(self) -> None:
        """The replica's background work, until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                for runner in self.runners:
                    group.create_task(runner.run())
                group.create_task(self.scheduler.run())
                group.create_task(self.completion.run())
                group.create_task(self._adopt())
        finally:
            await self.jobs.close()

    async def _adopt(self) -> None:
        while True:
            for adopter in self.adopters:
                try:
                    await adopter.look()
                except Exception:
                    stop_if_cancelled()
                    log.exception("looking for %s jobs to take up failed", adopter.kind)
            stop_if_cancelled()
            await asyncio.sleep(self.settings.adopt_seconds)
