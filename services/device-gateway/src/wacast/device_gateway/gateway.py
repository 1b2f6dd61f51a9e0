"""The gateway process: its parts wired together, and the life of each partition it holds.

Taking a partition: rebuild its lanes from events, fence the open ones (`LaneFenced` with
the lease revision as epoch), fail a dispatch found without outcome as `unknown`, then
consume its send requests, serve its QR queries, connect its sessions and start its lanes.
Letting one go does the reverse. Each partition's starts and stops run one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from faststream.nats import NatsBroker

from wacast.contracts import messages as m
from wacast.contracts.commands import DeviceCommand
from wacast.contracts.devices import DeviceEvent, DeviceLimitsChanged
from wacast.contracts.subjects import PARTITIONS, partition_of
from wacast.device_gateway import metrics
from wacast.device_gateway.caps import Caps
from wacast.device_gateway.controls import Controls
from wacast.device_gateway.device_store import DeviceStore
from wacast.device_gateway.directory import Directory
from wacast.device_gateway.dispatch import Dispatcher
from wacast.device_gateway.domain.device import Device
from wacast.device_gateway.domain.lane import Lane
from wacast.device_gateway.drivers.registry import Drivers, default_drivers
from wacast.device_gateway.handlers import CommandHandler
from wacast.device_gateway.inbound import Inbox
from wacast.device_gateway.intake import Intake
from wacast.device_gateway.lanes import Lanes
from wacast.device_gateway.listener import Reports
from wacast.device_gateway.media import MediaCache
from wacast.device_gateway.outcomes import Outcomes
from wacast.device_gateway.partitions import Partitions
from wacast.device_gateway.qr import QrBoard
from wacast.device_gateway.reactions import Reactions
from wacast.device_gateway.rebuild import fence, rebuild_partition
from wacast.device_gateway.receipts import Receipts
from wacast.device_gateway.session_store import SessionStore
from wacast.device_gateway.sessions import Sessions
from wacast.device_gateway.settings import Settings
from wacast.device_gateway.sweeper import Sweeper
from wacast.device_gateway.tenants import Tenants
from wacast.runtime.coalescer import Coalescer
from wacast.runtime.commands import serve_commands
from wacast.runtime.service import ServiceContext

log = logging.getLogger(__name__)

PRELOADED_SESSIONS_SECONDS = 60.0
"""Sessions read in bulk at start-up serve the first takeover only (later ones read fresh)."""
RECOVERY_GATHER_SECONDS = 0.5
"""Partitions taken within this long of each other share one read-back of recent sends."""
HAND_OVER_GRACE = 5.0
"""Seconds a send in flight gets to finish when its partition is handed over."""


class Gateway:
    def __init__(
        self,
        ctx: ServiceContext[Settings],
        *,
        drivers: Drivers | None = None,
        rng: random.Random | None = None,
        freeze_gc: bool = False,
    ) -> None:
        s = self.settings = ctx.settings
        nc, store, clock, topology = ctx.nc, ctx.store, ctx.clock, ctx.topology
        self.ctx = ctx
        self.replica = s.replica
        self.rng = rng or random.Random()
        self.serving: set[int] = set()
        self.closing = False
        self.freeze_gc = freeze_gc
        """Own the process: move what start-up loaded out of the garbage collector's way."""
        self._locks = [asyncio.Lock() for _ in range(PARTITIONS)]
        self._tasks: set[asyncio.Task[None]] = set()
        self._recover_due = asyncio.Event()
        self.directory = Directory(nc, topology)
        self.controls = Controls(nc, topology)
        self.tenants = Tenants(nc, topology)
        self.caps = Caps(self.directory, self.tenants)
        self.appender = Coalescer(store)
        self.devices = DeviceStore(self.appender, self.directory, clock)
        self.drivers = drivers or default_drivers(s.sim_url, s.whatsapp_sessions)
        self.board = QrBoard(nc, topology)
        self.receipts = Receipts(self.appender, clock, s.receipt_memory)
        self.session_store = SessionStore(nc, topology)
        self.lanes = Lanes(s, store, self.appender, clock, self.rng, self.controls)
        self.sessions = Sessions(
            s, clock, self.rng, self.directory, self.devices, self.drivers,
            self.session_store, self.serves, self.lanes.wake,
        )  # fmt: skip
        self.inbox = Inbox(self.appender, clock, self.directory, self.receipts)
        self.listener = Reports(self.sessions, self.board, self.receipts, self.inbox)
        self.drivers.listener = self.listener
        self.outcomes = Outcomes(self.appender, clock, self.receipts)
        self.dispatcher = Dispatcher(
            s, store, clock, self.lanes, self.directory, self.drivers,
            MediaCache(nc, topology, s.media_cache_bytes), self.outcomes,
        )  # fmt: skip
        self.lanes.sender = self.dispatcher
        self.lanes.zone_of = self.caps.zone
        self.lanes.cap_of = self.caps.of
        self.lanes.sendable = self.sessions.sendable
        self.lanes.on_fenced = self.fenced
        self.intake = Intake(
            nc, store, clock, self.directory, self.controls, self.lanes, ctx.dead_letters,
            s.lane_bound, self.fenced,
        )  # fmt: skip
        self.reactions = Reactions(
            s, clock, self.directory, self.sessions, self.drivers, self.board,
            self.session_store, self.cancel_lane,
        )  # fmt: skip
        self.sweeper = Sweeper(
            s, clock, self.lanes, self.directory, self.controls, self.outcomes,
            self.sessions.offline_since_time,
        )  # fmt: skip
        self.partitions = Partitions(
            nc, topology, self.replica, ttl=s.lease_ttl_seconds, renew_every=s.lease_renew_seconds,
            acquired=self._acquired, lost=self._lost, release=self._release,
        )  # fmt: skip
        self.commands = CommandHandler(self.devices, clock, self.drivers.problem)

    def register(self, broker: NatsBroker) -> None:
        serve_commands(
            broker, self.ctx.topology, "devices", DeviceCommand, self.commands, max_workers=64
        )
        self.board.register(broker)

    def serves(self, device_id: str) -> bool:
        return partition_of(device_id) in self.serving

    async def ready(self) -> bool:
        return all(part.ready.is_set() for part in (self.directory, self.controls, self.tenants))

    # -- the process ---------------------------------------------------------------------

    async def run(self) -> None:
        followers = [self.directory.run(), self.controls.run(), self.tenants.run()]
        running = [asyncio.create_task(work) for work in followers]
        try:
            await self.directory.ready.wait()
            await self.controls.ready.wait()
            await self.tenants.ready.wait()
            self.directory.listeners.append(self.reactions.on_event)
            self.directory.listeners.append(self._on_device)
            self.controls.listeners.append(self._on_control)
            self.tenants.listeners.append(self._on_tenant)
            await self.session_store.open()
            sessions = await self.session_store.preload()
            log.info("sessions read", extra={"sessions": sessions})
            await self.partitions.open()
            for work in (
                self.lanes.run(), self.sweeper.run(), self.sessions.health(),
                self.reactions.watch_pairing(), self.partitions.run(), self._after_start(),
                self._gauges(), self._recoveries(),
            ):  # fmt: skip
                running.append(asyncio.create_task(work))
            # Not `gather`: a cancelled gather waits for its children, and one that swallowed
            # its cancel would hold the shutdown up forever.
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            await cancel_all(running)
            await self.shutdown()

    async def shutdown(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.partitions.close(), 20.0)
        await self.listener.drain(10.0)
        await self.session_store.close()
        self.sessions.stop()
        self.listener.stop()
        await self.drivers.close()
        await self.appender.close()

    async def _after_start(self) -> None:
        await asyncio.sleep(self.settings.lease_renew_seconds)
        if self.freeze_gc:
            gc.freeze()  # the directory and lanes read at start-up live as long as we do
        await asyncio.sleep(PRELOADED_SESSIONS_SECONDS)
        self.session_store.forget_preloaded()

    async def _recoveries(self) -> None:
        """Read back the recent sends of partitions just taken (one read for a burst of
        takeovers), so receipts and replies to sends made before still count."""
        while True:
            await self._recover_due.wait()
            await asyncio.sleep(RECOVERY_GATHER_SECONDS)
            self._recover_due.clear()
            partitions = set(self.receipts.unrecovered)
            try:
                found = await self.receipts.recover(
                    partitions, self.settings.receipt_recovery_seconds
                )
            except Exception:
                log.exception("reading back recent sends failed; older receipts will not count")
            else:
                log.info("recent sends read back", extra={"sends": found})

    async def _gauges(self) -> None:
        while True:
            counts = Counter(
                k.state.status for d, k in self.directory.known.items() if self.serves(d)
            )
            for status in ("registered", "pairing", "paired", "connected", "disconnected",
                           "logged_out", "banned", "deleting", "deleted"):  # fmt: skip
                metrics.DEVICES.labels(status).set(counts.get(status, 0))
            sent, capacity, waiting = self.lanes.daily(self.ctx.clock.now())
            metrics.SENT_TODAY.set(sent)
            metrics.DAILY_CAP.set(capacity)
            metrics.LANES_AT_CAP.set(waiting)
            await asyncio.sleep(5.0)

    async def _on_device(self, state: Device, event: DeviceEvent) -> None:
        if isinstance(event, DeviceLimitsChanged):
            self.lanes.wake(state.device_id)  # a raised cap lets a waiting lane go on

    async def _on_tenant(self, tenant_id: str) -> None:
        for device_id, slot in list(self.lanes.slots.items()):
            if slot.lane.tenant_id == tenant_id:
                self.lanes.wake(device_id)

    async def _on_control(self, event: m.SendControlEventBase) -> None:
        if isinstance(event, m.SendsWithdrawn):
            self._spawn(self.sweeper.sweep())
        elif isinstance(event, m.SendsReleased):
            self.lanes.wake_all()

    async def cancel_lane(self, device_id: str, reason: str) -> None:
        slot = self.lanes.slots.get(device_id)
        if slot is not None:
            await self.lanes.cancel(slot, list(slot.lane.pending.values()), reason)

    # -- partitions ----------------------------------------------------------------------

    def _acquired(self, partition: int, epoch: int) -> None:
        self._spawn(self._start(partition, epoch))

    def _lost(self, partition: int) -> None:
        self._spawn(self._stop(partition, None))

    async def _release(self, partition: int) -> None:
        await self._stop(partition, "shutdown" if self.closing else "takeover")

    def fenced(self, partition: int) -> None:
        """Another replica appended to one of our lanes: stop, and start over if the lease
        is still ours (then the rebuild sees what the other one did)."""
        self._spawn(self._restart(partition))

    async def _restart(self, partition: int) -> None:
        await self._stop(partition, None)
        epoch = self.partitions.held.get(partition)
        if epoch is not None and not self.closing:
            await self._start(partition, epoch)

    async def _start(self, partition: int, epoch: int) -> None:
        async with self._locks[partition]:
            if partition in self.serving or partition not in self.partitions.held:
                return
            try:
                lanes = await self._take(partition, epoch)
            except Exception as exc:
                log.warning("starting partition %s failed (%s); retrying", partition, exc)
                self.serving.discard(partition)
                await self.intake.stop(partition)
                await self.lanes.drop(partition, 0)
                await self.board.unserve(partition)
                self._spawn(self._retry_start(partition))
                return
            self.receipts.unrecovered.add(partition)
            self._recover_due.set()
            self._spawn(self.sessions.start_partition(partition))
            self._spawn(self.reactions.resume(partition))
            metrics.TAKEOVERS.inc()
            log.debug("serving partition", extra={"partition": partition, "lanes": len(lanes)})

    async def _take(self, partition: int, epoch: int) -> list[Lane]:
        lanes = await rebuild_partition(
            self.ctx.nc, self.ctx.topology, partition, self.tenants.timezone
        )
        self.lanes.adopt(lanes)
        self.serving.add(partition)
        await fence(self.lanes, self.outcomes, lanes, self.replica, epoch)
        await self.board.serve(partition)
        await self.intake.start(partition)
        self.lanes.wake_all(partition)
        return lanes

    async def _retry_start(self, partition: int) -> None:
        await asyncio.sleep(1.0)
        epoch = self.partitions.held.get(partition)
        if epoch is not None:
            await self._start(partition, epoch)

    async def _stop(self, partition: int, reason: str | None) -> None:
        async with self._locks[partition]:
            if partition not in self.serving:
                return
            self.serving.discard(partition)
            await self.intake.stop(partition)
            await self.lanes.drop(partition, HAND_OVER_GRACE)
            await self.sessions.stop_partition(partition, reason)
            await self.board.unserve(partition)
            log.debug("stopped serving partition", extra={"partition": partition, "why": reason})

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until every task has ended: on Python 3.11 a task can swallow a cancel (a
    `wait_for` whose inner call finishes at the same moment), and a loop would go on."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
