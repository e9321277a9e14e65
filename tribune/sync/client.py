"""The room's MQTT 5 link to the hub, run by a supervisor task that never gives up.

Per connection: the birth message (`status` online, retained), the `cmd` subscription, the
retained `state`, then three loops until the link breaks — drain the outbox (a row is deleted
only after its PUBACK), re-publish `state` on change (at most every `state_min_interval`) and
take commands. The link breaking never touches the room: events wait in the outbox, commands
run in their own task, and the supervisor reconnects with capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import ssl
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tribune import __version__
from tribune.config import SyncSection
from tribune.drivers.reconnect import Backoff
from tribune.errors import TribuneError
from tribune.room import Room
from tribune.sync.acks import ack, manual_acks
from tribune.sync.commands import CommandRunner, ScheduleHandler
from tribune.sync.feed import RoomFeed
from tribune.sync.outbox import Outbox
from tribune.sync.sockets import guard_sockets
from tribune.sync.topics import RESULTS, Topics, utc_now

log = logging.getLogger(__name__)

SESSION_EXPIRY = 7 * 24 * 3600  # the broker keeps our `cmd` subscription (and queue) this long
RECONNECT_MIN = 0.5
BATCH = 10  # in flight at once (aiomqtt warns past 10 pending publishes)
CONNECT_TIMEOUT = 10.0
STATE_SETTLE = 0.05  # seconds a change waits for the rest of its intent before `state` goes
OFFLINE = json.dumps({"status": "offline"}).encode()


class LinkState(StrEnum):
    """Where the link to the broker is."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


class SyncClient:
    """Keeps one room linked to the hub's broker; `start()` and `stop()` it with the service."""

    def __init__(
        self,
        room: Room,
        settings: SyncSection,
        *,
        base_dir: Path,
        schedule: ScheduleHandler | None = None,
        flasher: Any = None,
    ) -> None:
        self.room = room
        self.settings = settings
        self.base_dir = base_dir
        self.topics = Topics(room.id)
        self.client_id = settings.client_id or "tribune-" + room.id.replace("/", "-")
        self.outbox = Outbox(
            room.store,
            room.id,
            max_rows=settings.outbox_max_events,
            max_age=settings.outbox_max_age_hours * 3600,
        )
        if flasher is None and room.profiles is not None:
            from tribune.profiles.flash import ProfileFlasher

            flasher = ProfileFlasher(room, room.profiles)
        self.commands = CommandRunner(room, schedule=schedule, flasher=flasher)
        self.state = LinkState.DISCONNECTED
        self.connected = asyncio.Event()
        self.connects = 0
        self._dirty = asyncio.Event()
        self._inbox: asyncio.Queue[tuple[bytes, Callable[[], None]]] = asyncio.Queue(maxsize=1000)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self.feed = RoomFeed(
            room, self.outbox, lamp_hours_alert=settings.lamp_hours_alert, on_change=self._dirty.set
        )

    async def start(self) -> None:
        """Follow the room and start linking to the broker (returns at once)."""
        if self.settings.hub_key_file is not None:
            self.commands.signed_only = True
            self.commands.hub_key = await asyncio.to_thread(self._hub_key)
        self.feed.attach()
        self._tasks = [
            asyncio.create_task(self.feed.run(), name="sync-feed"),
            asyncio.create_task(self._run_commands(), name="sync-commands"),
        ]
        self._supervisor = asyncio.create_task(self._supervise(), name="sync-link")

    async def stop(self, timeout: float = 3.0) -> None:
        """Say `offline` (when linked) and disconnect; stop following the room."""
        self._stopping.set()
        if self._supervisor is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._supervisor), timeout)
            except (TimeoutError, Exception):
                await _cancel(self._supervisor)
        for task in self._tasks:
            await _cancel(task)
        await self.feed.drain()  # into the outbox: sent after the next start

    # --- the link ---------------------------------------------------------------------------

    async def _supervise(self) -> None:
        # Wide jitter: after a broker restart a thousand rooms must not all come back at once.
        backoff = Backoff(RECONNECT_MIN, self.settings.reconnect_max, jitter=0.5)
        failures = 0
        while not self._stopping.is_set():
            self.state = LinkState.CONNECTING
            try:
                client = await self._client()
                async with client:
                    self.state = LinkState.CONNECTED
                    self.connects += 1
                    failures = 0
                    backoff.reset()
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                # Loud once per outage, quiet while it lasts (links go down for a night).
                failures += 1
                level = logging.WARNING if failures == 1 else logging.INFO
                log.log(level, "sync: %s: %s", self.settings.broker, exc)
            except (TribuneError, OSError) as exc:  # an unreadable password file, key, CA...
                failures += 1
                log.log(logging.ERROR if failures == 1 else logging.INFO, "sync: %s", exc)
            except Exception:
                # The room never suffers for the link: log it and try again.
                log.exception("sync: link failure")
            finally:
                self.connected.clear()
                self.state = LinkState.DISCONNECTED
            if self._stopping.is_set():
                return
            pause = backoff.next_delay()
            log.info("sync: reconnecting in %.1f s", pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def _client(self) -> aiomqtt.Client:
        settings = self.settings
        password = await asyncio.to_thread(settings.read_password, self.base_dir)
        context = await asyncio.to_thread(self._tls_context) if settings.tls else None
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.SessionExpiryInterval = SESSION_EXPIRY
        will = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
        will.ContentType = "application/json"
        client = aiomqtt.Client(
            settings.host,
            settings.port,
            username=settings.username,
            password=password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True, properties=will),
            clean_start=False,
            keepalive=settings.keepalive,
            timeout=CONNECT_TIMEOUT,
            properties=connect,
            tls_context=context,
            logger=logging.getLogger("tribune.sync.mqtt"),
        )
        manual_acks(client)  # a command is acknowledged once recorded, not on arrival
        guard_sockets(client)  # no writer on a socket closed (or reused) meanwhile
        return client

    def _hub_key(self) -> Any:
        from tribune.sync.signing import load_public_key

        assert self.settings.hub_key_file is not None
        path = (self.base_dir / self.settings.hub_key_file).expanduser()
        try:
            return load_public_key(path.read_bytes())
        except Exception as exc:  # unreadable, not PEM, an algorithm cryptography cannot load
            # The room runs on; hub commands are refused, and their results say why.
            log.error("sync.hub_key_file %s: %s; hub commands will be refused", path, exc)
            return None

    def _tls_context(self) -> ssl.SSLContext:
        settings = self.settings
        ca = str(self.base_dir / settings.ca_file) if settings.ca_file else None
        context = ssl.create_default_context(cafile=ca)
        if settings.cert_file and settings.key_file:
            context.load_cert_chain(
                str(self.base_dir / settings.cert_file), str(self.base_dir / settings.key_file)
            )
        return context

    async def _session(self, client: aiomqtt.Client) -> None:
        birth = {
            "status": "online",
            "at": utc_now(),
            "version": __version__,
            "connects": self.connects,
        }
        await client.publish(self.topics.status, json.dumps(birth), qos=1, retain=True)
        await client.subscribe(self.topics.cmd, qos=1)
        await self._publish_state(client)
        self.connected.set()  # announced: status, subscription and state are at the broker
        log.warning("sync: linked to %s as %s", self.settings.broker, self.client_id)
        loops = [
            asyncio.create_task(self._drain(client), name="sync-drain"),
            asyncio.create_task(self._refresh_state(client), name="sync-state"),
            asyncio.create_task(self._receive(client), name="sync-receive"),
        ]
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait([*loops, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*loops, stopping]:
                await _cancel(task)
        if self._stopping.is_set():
            # A clean goodbye: the broker sends no last will after DISCONNECT.
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(self.topics.status, OFFLINE, qos=1, retain=True, timeout=2.0)
            return
        for task in done:
            task.result()  # the reason the link broke

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            self.outbox.wakeup.clear()
            rows = await self.room.store.outbox_peek(BATCH)
            if not rows:
                await self.outbox.wakeup.wait()
                continue
            sent = await asyncio.gather(
                *(
                    client.publish(self.topics.of(suffix), payload, qos=1)
                    for _, suffix, payload in rows
                ),
                return_exceptions=True,
            )
            acked = [row[0] for row, outcome in zip(rows, sent, strict=True) if outcome is None]
            await self.room.store.outbox_remove(acked)
            for outcome in sent:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _refresh_state(self, client: aiomqtt.Client) -> None:
        # At most one `state` per interval, sent at once when the last one is older than that:
        # a lone change reaches the hub in milliseconds, a burst of changes in one more message.
        # One intent moves the room through several events in a few milliseconds (audit, the
        # source, each device's desired state): a short settle lets them go as one message.
        interval = self.settings.state_min_interval
        settle = min(STATE_SETTLE, interval)
        last = time.monotonic()  # the session has just published it
        while True:
            await self._dirty.wait()
            wait = max(last + interval - time.monotonic(), settle)
            await asyncio.sleep(wait)  # changes in the meantime ride along
            await self._publish_state(client)
            last = time.monotonic()

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        self._dirty.clear()
        revision = await self.room.store.bump_meta("sync.state_revision")
        body = {
            "revision": revision,
            "at": utc_now(),
            "room": self.room.id,
            "snapshot": self.room.snapshot(),
        }
        await client.publish(self.topics.state, json.dumps(body), qos=1, retain=True)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if not message.topic.matches(self.topics.cmd):
                continue
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            try:
                self._inbox.put_nowait((data, functools.partial(ack, client, message)))
            except asyncio.QueueFull:
                # Not acknowledged: the broker sends it again on the next connect.
                log.warning("sync: too many hub commands waiting; one left for later")

    # --- commands (outlive a broken link: a running command is never cut short) ---------------

    async def _run_commands(self) -> None:
        while True:
            payload, acknowledge = await self._inbox.get()
            try:
                answer = await self.commands.handle(payload, recorded=acknowledge)
                await self.outbox.message(RESULTS, answer)
            except Exception:
                log.exception("sync: a hub command failed unexpectedly")


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
