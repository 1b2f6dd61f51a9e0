"""The `whatsapp` driver: real WhatsApp through neonize 0.5.2 (whatsmeow), many devices.

One neonize async client per device, on its own session store (neonize_store.py). What
neonize makes the driver do:

- Events reach Python as coroutines scheduled on one process-wide loop
  (`neonize.aioze.events.event_global_loop`, set at `start`); their exceptions vanish. The
  handlers here only queue the event; one pump task per device takes them in order and
  guards each with a log, so the listener hears a device's events in the order they came.
- Every running client holds a default-executor thread (its Go `Neonize()` call blocks for
  the client's life) and every other call borrows one: `start` sizes the loop's default
  executor and `connect`/`pair_*` refuse (`capacity`) before connections could starve sends.
- Go keeps its clients in maps with no lock: clients are started and stopped one at a time.
- QR codes rotate (60 s, then 20 s each) until whatsmeow gives up and disconnects, leaving
  the client blocked: a link not made within `pair_timeout` is stopped and reported as
  `on_disconnected(..., "pairing_timeout")`. A phone code needs the socket up: it is asked
  for from the first QR callback.
- A send that failed after its message node may have left is `accepted=None` and never
  resent (neonize_events.send_error); the driver never sends to a number WhatsApp does not
  know (whatsmeow would "succeed"): it asks `is_on_whatsapp` first and remembers.
- Media is handed over as bytes (given a string, neonize reads a path or fetches a URL with
  no timeout); video needs ffmpeg/ffprobe on PATH.
- `get_me()` is never called: before the socket is up it is a Go panic.

A requested `disconnect` is reported as `on_disconnected(..., "requested")` (as the
simulator driver does); a requested `logout` is not echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from wacast.device_gateway.drivers import neonize_events
from wacast.device_gateway.drivers.base import (
    DriverError,
    DriverListener,
    Outbound,
    SendError,
    Sent,
)
from wacast.device_gateway.drivers.neonize_client import (
    ClientFactory,
    NeonizeClient,
    NeonizeClientFactory,
)
from wacast.device_gateway.drivers.neonize_loader import (
    BOT_TAG_VAR,
    BotTag,
    NeonizeApi,
    bot_tag_problem,
    launch_environment,
    load_neonize,
)
from wacast.device_gateway.drivers.neonize_store import ClientArgs, SessionStore, session_store

log = logging.getLogger(__name__)

Mode = Literal["connect", "pair_qr", "pair_code"]
LOOKUP_CACHE = 100_000
"""Recipients whose `is_on_whatsapp` answer is remembered (the oldest answer goes first)."""

_executors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()
"""Size of the default executor this module gave each loop."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NeonizeOptions:
    sessions: str = "var/sessions"
    """A directory (one SQLite file per device) or a `postgres...` URL (neonize_store.py)."""
    pair_timeout: float = 180.0
    """Seconds a QR or code link may take before the client is stopped."""
    code_timeout: float = 30.0
    """Seconds to get a pairing code (the linking socket has to come up first)."""
    send_timeout: float = 120.0
    """After this, a send's outcome is unknown (it keeps running; it is only logged)."""
    logout_timeout: float = 30.0
    """Seconds to bring an offline device online so that it can unlink itself."""
    executor_workers: int = 256
    executor_reserve: int = 32
    """Threads never given to connections: at most workers - reserve devices run."""
    start_settle: float = 0.5
    """Longest a starting client keeps the start gate (Go registers it in its maps soon
    after opening its store); its first event frees the gate earlier."""
    stop_timeout: float = 10.0
    session_refresh: float = 900.0
    """Seconds between session snapshots of a connected device (0: only on changes)."""
    lookup_ttl: float = 86_400.0
    """Seconds an `is_on_whatsapp` answer is trusted (a number absent: a tenth of it)."""
    bot_tag: BotTag = "off"
    """WhatsApp's bot/AI label on one-to-one messages (neonize_loader.py)."""
    go_log_level: str = "WARNING"
    """Lowest whatsmeow log level forwarded into Python logging."""

    def __post_init__(self) -> None:
        if not 0 <= self.executor_reserve < self.executor_workers:
            raise ValueError("executor_workers must exceed executor_reserve (>= 0)")
        for name in ("pair_timeout", "code_timeout", "send_timeout", "logout_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")


@dataclass(eq=False)
class _Link:
    """One device's client and what the driver knows of it."""

    device_id: str
    client: NeonizeClient
    mode: Mode
    inbox: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    alive: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the first event: the client has started (Go has registered it)."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    linked: asyncio.Event = field(default_factory=asyncio.Event)
    online: asyncio.Event = field(default_factory=asyncio.Event)
    jid: str = ""
    session_digest: str = ""
    """Digest of the session last reported (an unchanged session is not reported again)."""
    phone: str = ""
    """Pairing by code: the phone's digits."""
    code: asyncio.Future[str] | None = None
    asked_code: bool = False
    closed: bool = False
    ops: int = 0
    quiet: asyncio.Event = field(default_factory=asyncio.Event)
    runner: asyncio.Future[Any] | None = None
    deadline: asyncio.Task[None] | None = None
    refreshing: bool = False

    def __post_init__(self) -> None:
        self.quiet.set()
        if self.mode == "connect":
            self.linked.set()
        if self.mode == "pair_code":
            self.code = asyncio.get_running_loop().create_future()
            self.code.add_done_callback(_retrieve)

    @property
    def connected(self) -> bool:
        return self.online.is_set() and not self.closed

    @contextlib.asynccontextmanager
    async def op(self) -> AsyncIterator[None]:
        """A call into the client: `stop` waits for these (Go frees the client)."""
        self.ops += 1
        self.quiet.clear()
        try:
            yield
        finally:
            self.ops -= 1
            if self.ops == 0:
                self.quiet.set()


class NeonizeDriver:
    """`Driver` over real WhatsApp. One per process (neonize has one event loop)."""

    name = "whatsapp"

    def __init__(
        self, options: NeonizeOptions | None = None, *, clients: ClientFactory | None = None
    ) -> None:
        self.options = options or NeonizeOptions()
        self._clients = clients
        self._api: NeonizeApi | None = None
        self._store: SessionStore | None = None
        self._listener: DriverListener | None = None
        self._links: dict[str, _Link] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._gate = asyncio.Lock()
        self._serial = itertools.count(1)
        self._lookups: dict[str, tuple[float, Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self, listener: DriverListener) -> None:
        api = load_neonize()
        if self._clients is None:
            problem = bot_tag_problem(self.options.bot_tag, launch_environment(BOT_TAG_VAR))
            if problem is not None:
                raise DriverError("bot_tag", problem)
            self._clients = NeonizeClientFactory(api)
        logging.getLogger("neonize.utils.log").setLevel(self.options.go_log_level)
        loop = asyncio.get_running_loop()
        api.events.event_global_loop = loop
        if _executors.get(loop, 0) < self.options.executor_workers:
            loop.set_default_executor(
                ThreadPoolExecutor(self.options.executor_workers, thread_name_prefix="neonize")
            )
            _executors[loop] = self.options.executor_workers
        self._api = api
        self._store = session_store(self.options.sessions, self._clients)
        self._listener = listener

    async def close(self) -> None:
        links = list(self._links.values())
        for link in links:
            await self._stop(link)
        for link in links:
            if link.linked.is_set():
                await self._report_session(link)
        for task in list(self._background):
            task.cancel()

    # ---- Driver commands ------------------------------------------------------------------

    async def connect(self, device_id: str, session: bytes | None) -> None:
        store = self._started()
        async with self._locks[device_id]:
            link = self._links.get(device_id)
            if link is not None:
                if not link.linked.is_set():
                    raise DriverError("pairing", f"{device_id} is being linked")
                return  # connected, or whatsmeow is reconnecting it: it reports either way
            try:
                args = await store.restore(device_id, session)
            except DriverError as exc:
                if exc.code == "logged_out":
                    await self._emit("on_logged_out", device_id, "session_invalid")
                raise
            await self._start(device_id, "connect", args)

    async def pair_qr(self, device_id: str) -> None:
        await self._pair(device_id, "pair_qr", "")

    async def pair_code(self, device_id: str, phone: str) -> str:
        digits = neonize_events.e164_digits(phone)
        if digits is None:
            raise DriverError("bad_phone", f"{phone!r} is not an E.164 phone number")
        link = await self._pair(device_id, "pair_code", digits)
        assert link.code is not None
        try:
            return await asyncio.wait_for(asyncio.shield(link.code), self.options.code_timeout)
        except TimeoutError:
            await self._stop(link)
            raise DriverError("timeout", "WhatsApp did not open a linking socket") from None
        except DriverError:
            await self._stop(link)
            raise

    async def typing(self, device_id: str, to: str, seconds: float) -> None:
        link = self._connected(device_id)
        if link is None:
            raise DriverError("not_connected", f"{device_id} is offline")
        api = self._loaded()
        digits = neonize_events.e164_digits(to)
        if digits is None:
            raise DriverError("bad_phone", f"{to!r} is not an E.164 phone number")
        cached = self._lookups.get(digits)
        jid = cached[1] if cached is not None and cached[1] is not None else api.build_jid(digits)
        text = api.ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT
        await self._presence(link, jid, api.ChatPresence.CHAT_PRESENCE_COMPOSING, text)
        await asyncio.sleep(max(0.0, seconds))
        await self._presence(link, jid, api.ChatPresence.CHAT_PRESENCE_PAUSED, text)

    async def send(self, device_id: str, message: Outbound) -> Sent:
        link = self._connected(device_id)
        if link is None:
            raise SendError("not_connected", retryable=True, accepted=False, detail=device_id)
        attempt = asyncio.ensure_future(self._send(link, message))
        try:
            return await asyncio.wait_for(asyncio.shield(attempt), self.options.send_timeout)
        except TimeoutError:
            attempt.add_done_callback(_log_late_outcome)
            raise SendError(
                "timeout", retryable=False, accepted=None, detail="no answer from WhatsApp"
            ) from None

    async def disconnect(self, device_id: str) -> None:
        async with self._locks[device_id]:
            link = self._links.get(device_id)
            if link is None:
                return
            was_connected = link.connected
            await self._stop(link)
            if link.linked.is_set():
                await self._report_session(link)
            if was_connected:
                await self._emit("on_disconnected", device_id, "requested")

    async def logout(self, device_id: str) -> None:
        store = self._started()
        async with self._locks[device_id]:
            link = self._links.get(device_id)
            if link is None or not link.connected:
                if link is not None:
                    await self._stop(link)
                link = await self._bring_online(device_id)
            try:
                async with link.op():
                    await link.client.logout()
            except Exception as exc:
                raise DriverError("logout_failed", str(exc)) from exc
            await self._stop(link)
            await store.forget(device_id)

    # ---- clients ------------------------------------------------------------------------

    async def _pair(self, device_id: str, mode: Mode, digits: str) -> _Link:
        store = self._started()
        async with self._locks[device_id]:
            link = self._links.get(device_id)
            if link is not None:
                if link.linked.is_set():
                    raise DriverError("already_linked", f"{device_id} is already linked")
                await self._stop(link)
            args = await store.for_pairing(device_id)
            link = await self._start(device_id, mode, args, phone=digits)
            link.deadline = asyncio.create_task(self._pair_deadline(link))
            return link

    async def _start(self, device_id: str, mode: Mode, args: ClientArgs, phone: str = "") -> _Link:
        running = len(self._links)
        capacity = self.options.executor_workers - self.options.executor_reserve
        if running >= capacity:
            raise DriverError(
                "capacity", f"{running} devices run; raise executor_workers to run more"
            )
        assert self._clients is not None
        uuid = f"{device_id}#{next(self._serial)}"
        client = self._clients.new_client(
            args.name, jid=args.jid, uuid=uuid, new_device=args.new_device
        )
        link = _Link(device_id, client, mode, jid=args.jid, phone=phone)
        for kind, event_class in self._event_classes().items():
            client.event(event_class)(self._enqueue(link, kind))
        client.qr(self._enqueue(link, "qr"))
        self._links[device_id] = link
        self._spawn(self._pump(link))
        failure: Exception | None = None
        async with self._gate:
            try:
                link.runner = runner = await client.connect()
            except Exception as exc:
                failure = exc
            else:
                runner.add_done_callback(lambda done: self._ended(link, done))
                alive = asyncio.ensure_future(link.alive.wait())
                await asyncio.wait(
                    {alive, runner},
                    timeout=self.options.start_settle,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                alive.cancel()
        if failure is not None:
            await self._stop(link)
            raise DriverError("connect_failed", str(failure)) from failure
        return link

    def _event_classes(self) -> dict[str, Any]:
        events = self._loaded().events
        return {
            "paired": events.PairStatusEv,
            "connected": events.ConnectedEv,
            "disconnected": events.DisconnectedEv,
            "logged_out": events.LoggedOutEv,
            "banned": events.TemporaryBanEv,
            "replaced": events.StreamReplacedEv,
            "connect_failure": events.ConnectFailureEv,
            "outdated": events.ClientOutdatedEv,
            "receipt": events.ReceiptEv,
            "message": events.MessageEv,
        }

    def _enqueue(self, link: _Link, kind: str) -> Callable[[Any, Any], Awaitable[None]]:
        async def handler(_client: Any, payload: Any) -> None:
            link.inbox.put_nowait((kind, payload))
            link.alive.set()

        return handler

    async def _stop(self, link: _Link) -> None:
        """Stop a link's client and forget it (from anywhere, its own pump included). Its
        tasks end by themselves: none is cut off in the middle of a listener call."""
        if link.closed:
            return
        link.closed = True
        link.ended.set()
        link.inbox.put_nowait(("stop", None))
        if self._links.get(link.device_id) is link:
            del self._links[link.device_id]
        if link.code is not None and not link.code.done():
            link.code.set_exception(DriverError("stopped", f"{link.device_id} was stopped"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(link.quiet.wait(), self.options.stop_timeout)
        async with self._gate:
            try:
                await link.client.stop()
            except Exception:
                log.exception("stopping the client of %s failed", link.device_id)
        if link.runner is not None:
            await asyncio.wait({link.runner}, timeout=self.options.stop_timeout)
        if link.deadline is not None and link.deadline is not asyncio.current_task():
            link.deadline.cancel()

    def _ended(self, link: _Link, runner: asyncio.Future[Any]) -> None:
        if link.closed:
            if not runner.cancelled() and runner.exception() is not None:
                log.debug("client of %s ended: %s", link.device_id, runner.exception())
            return
        reason = "client_ended"
        if not runner.cancelled() and runner.exception() is not None:
            reason = f"client_failed: {runner.exception()}"
        self._spawn(self._lost(link, reason))

    async def _lost(self, link: _Link, reason: str) -> None:
        log.warning("the client of %s ended by itself (%s)", link.device_id, reason)
        await self._stop(link)
        await self._emit("on_disconnected", link.device_id, reason)

    async def _bring_online(self, device_id: str) -> _Link:
        args = await self._started().restore(device_id, None)
        link = await self._start(device_id, "connect", args)
        try:
            await asyncio.wait_for(link.online.wait(), self.options.logout_timeout)
        except TimeoutError:
            await self._stop(link)
            raise DriverError("not_connected", f"{device_id} could not be reached") from None
        return link

    async def _pair_deadline(self, link: _Link) -> None:
        try:
            await asyncio.wait_for(link.linked.wait(), self.options.pair_timeout)
        except TimeoutError:
            log.info("%s was not linked within %.0fs", link.device_id, self.options.pair_timeout)
            await self._stop(link)
            await self._emit("on_disconnected", link.device_id, "pairing_timeout")

    async def _refresh_session(self, link: _Link) -> None:
        """whatsmeow keeps writing the store (keys, contacts): persist it now and then."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.ended.wait(), self.options.session_refresh)
            if link.closed:
                return
            if link.connected:
                await self._report_session(link)

    # ---- events -------------------------------------------------------------------------

    async def _pump(self, link: _Link) -> None:
        while True:
            kind, payload = await link.inbox.get()
            if link.closed:
                return
            try:
                await self._on_event(link, kind, payload)
            except Exception:
                log.exception("handling %s of %s failed", kind, link.device_id)

    async def _on_event(self, link: _Link, kind: str, event: Any) -> None:
        device_id = link.device_id
        match kind:
            case "qr":
                await self._on_qr(link, event)
            case "paired":
                await self._on_paired(link, event)
            case "connected":
                link.online.set()
                if not link.refreshing and self.options.session_refresh > 0:
                    link.refreshing = True
                    self._spawn(self._refresh_session(link))
                await self._emit("on_connected", device_id)
                await self._report_session(link)
            case "disconnected":
                if link.online.is_set():
                    link.online.clear()
                    await self._emit("on_disconnected", device_id, "connection_lost")
            case "logged_out":
                await self._stop(link)
                await self._started().forget(device_id)
                await self._emit(
                    "on_logged_out", device_id, neonize_events.enum_name(event, "Reason")
                )
            case "banned":  # a connect refused (402): whatsmeow stays off until told again
                await self._stop(link)
                until = neonize_events.ban_until(event.Expire, datetime.now(UTC))
                reason = neonize_events.enum_name(event, "Code")
                await self._emit("on_banned", device_id, until, reason)
                await self._emit("on_disconnected", device_id, "banned")
            case "replaced":
                await self._stop(link)
                await self._emit("on_disconnected", device_id, "replaced")
            case "connect_failure":
                reason = neonize_events.enum_name(event, "Reason")
                if reason not in ("logged_out", "temp_banned"):  # those come as their events
                    await self._stop(link)  # the gateway reconnects it with its backoff
                    await self._emit("on_disconnected", device_id, f"connect_failure: {reason}")
            case "outdated":
                await self._stop(link)
                await self._emit("on_disconnected", device_id, "client_outdated")
            case "receipt":
                receipt = neonize_events.RECEIPT_KINDS.get(event.Type)
                if receipt is not None:
                    at = neonize_events.moment(event.Timestamp)
                    for message_id in event.MessageIDs:
                        await self._emit("on_receipt", device_id, message_id, receipt, at)
            case "message":
                message = neonize_events.inbound(event, self._loaded().extract_text)
                if message is not None:
                    await self._emit("on_inbound", device_id, message)

    async def _on_qr(self, link: _Link, data: bytes) -> None:
        if link.mode == "pair_qr":
            await self._emit("on_qr", link.device_id, data.decode())
        elif link.mode == "pair_code":
            if link.asked_code or link.code is None or link.code.done():
                return
            link.asked_code = True
            try:
                async with link.op():
                    code = await link.client.PairPhone(link.phone, True)
            except Exception as exc:
                link.code.set_exception(DriverError("pair_code_failed", str(exc)))
            else:
                link.code.set_result(code.strip())
        else:  # whatsmeow asks for a QR: the store it resumed holds no device any more
            await self._stop(link)
            await self._started().forget(link.device_id)
            await self._emit("on_logged_out", link.device_id, "session_invalid")

    async def _on_paired(self, link: _Link, event: Any) -> None:
        if neonize_events.enum_name(event, "Status") != "success":
            await self._stop(link)
            await self._emit("on_disconnected", link.device_id, f"pairing_failed: {event.Error}")
            return
        link.jid = self._loaded().jid_to_string(event.ID)
        link.linked.set()
        await self._emit("on_paired", link.device_id, f"+{event.ID.User}", link.jid)
        await self._report_session(link)

    async def _report_session(self, link: _Link) -> None:
        try:
            session = await self._started().snapshot(link.device_id, link.jid)
        except DriverError as exc:
            log.warning("the session of %s could not be read: %s", link.device_id, exc)
            return
        digest = hashlib.sha256(session).hexdigest()
        if digest != link.session_digest:
            link.session_digest = digest
            await self._emit("on_session", link.device_id, session)

    async def _emit(self, name: str, *args: Any) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            await getattr(listener, name)(*args)
        except Exception:
            log.exception("listener %s(%s) failed", name, args[0] if args else "")

    # ---- sending ------------------------------------------------------------------------

    async def _send(self, link: _Link, message: Outbound) -> Sent:
        api = self._loaded()
        async with link.op():
            jid = await self._recipient(link, message.to)
            payload = await self._payload(link, message)
            try:
                response = await link.client.send_message(jid, payload)
            except api.SendMessageError as exc:
                raise neonize_events.send_error(str(exc)) from exc
            except Exception as exc:  # the Go call may have run: nobody knows
                raise SendError(
                    "unknown", retryable=False, accepted=None, detail=repr(exc)
                ) from exc
        return Sent(wa_message_id=response.ID, at=neonize_events.moment(response.Timestamp))

    async def _recipient(self, link: _Link, phone: str) -> Any:
        """The JID WhatsApp knows `phone` by (it may differ: Brazil's ninth digit)."""
        digits = neonize_events.e164_digits(phone)
        if digits is None:
            raise SendError("bad_recipient", retryable=False, accepted=False, detail=phone)
        now = time.monotonic()
        cached = self._lookups.get(digits)
        if cached is None or cached[0] < now:
            try:
                answers = await link.client.is_on_whatsapp(phone)
            except Exception as exc:
                raise SendError(
                    "lookup_failed", retryable=True, accepted=False, detail=str(exc)
                ) from exc
            answer = next((a for a in answers if a.IsIn), None)
            jid = answer.JID if answer is not None else None
            ttl = self.options.lookup_ttl if jid is not None else self.options.lookup_ttl / 10
            self._lookups.pop(digits, None)
            if len(self._lookups) >= LOOKUP_CACHE:
                del self._lookups[next(iter(self._lookups))]
            cached = self._lookups[digits] = (now + ttl, jid)
        if cached[1] is None:
            raise SendError("not_on_whatsapp", retryable=False, accepted=False, detail=phone)
        return cached[1]

    async def _payload(self, link: _Link, message: Outbound) -> Any:
        """The message protobuf; media is uploaded here, before anything is sent."""
        api = self._loaded()
        caption = message.text or None
        if message.media is None:
            if not message.text:
                raise SendError("empty_message", retryable=False, accepted=False)
            return api.Message(conversation=message.text)
        client = link.client
        try:
            match message.media_kind:
                case "image":
                    return await client.build_image_message(message.media, caption=caption)
                case "video":
                    return await client.build_video_message(message.media, caption=caption)
                case "document":
                    return await client.build_document_message(
                        message.media,
                        caption=caption,
                        filename=message.filename or None,
                        mimetype=message.mime or None,
                    )
        except api.UploadError as exc:
            raise neonize_events.upload_error(str(exc)) from exc
        except Exception as exc:  # PIL cannot read it, ffprobe is missing or refuses it...
            raise SendError("bad_media", retryable=False, accepted=False, detail=repr(exc)) from exc
        raise SendError("bad_media", retryable=False, accepted=False, detail="no media kind")

    async def _presence(self, link: _Link, jid: Any, state: Any, media: Any) -> None:
        try:
            async with link.op():
                await link.client.send_chat_presence(jid, state, media)
        except Exception as exc:
            log.info("typing indicator of %s not shown: %s", link.device_id, exc)

    # ---- helpers ------------------------------------------------------------------------

    def _started(self) -> SessionStore:
        if self._store is None:
            raise DriverError("not_started", "the driver has not been started")
        return self._store

    def _loaded(self) -> NeonizeApi:
        if self._api is None:
            raise DriverError("not_started", "the driver has not been started")
        return self._api

    def _connected(self, device_id: str) -> _Link | None:
        self._started()
        link = self._links.get(device_id)
        return link if link is not None and link.connected else None

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _log_late_outcome(attempt: asyncio.Future[Sent]) -> None:
    if attempt.cancelled():
        return
    error = attempt.exception()
    if error is None:
        log.warning("a send reported unknown finished late: %s", attempt.result().wa_message_id)
    else:
        log.warning("a send reported unknown failed late: %s", error)
