"""The hub's MQTT 5 link: takes in every room's topics, publishes commands, expires the silent.

One supervisor task keeps the link up (capped, jittered backoff). Per connection: subscribe to
`tribune/v1/+/+/{status,state,events,cmd/result}`, then three loops until the link breaks —
store what arrives, publish `queued` commands (each marked `delivered` after its PUBACK), and
mark `expired` the deliveries with no result past their deadline plus a margin. The session is
persistent (`clean_start = false`), so events sent while the hub was away wait at the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import ssl
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tribune.drivers.reconnect import Backoff
from tribune.hub.publisher import Publisher
from tribune.hub.store import RESULTS, HubCommand, HubStorage, Incoming
from tribune.sync.acks import ack, manual_acks
from tribune.sync.client import LinkState
from tribune.sync.commands import ACTIONS, COMMAND_ID, nested_deeper_than
from tribune.sync.profile_push import push_message
from tribune.sync.signing import command_message
from tribune.sync.sockets import guard_sockets
from tribune.sync.topics import PREFIX, Topics, iso

log = logging.getLogger(__name__)

SUBSCRIPTIONS = ("status", "state", "events", "cmd/result")
MAX_DEPTH = 32  # a state snapshot nests 7 deep
SESSION_EXPIRY = 24 * 3600  # events from rooms wait this long at the broker for the hub
CONNECT_TIMEOUT = 10.0
RECONNECT_MIN = 0.5
BATCH = 10  # publishes in flight at once
RECEIVE_BATCH = 500  # messages stored in one transaction at most
ROOM_PART = COMMAND_ID  # a site or room name: the same safe characters as a command id


class HubSubscriber:
    """Links the hub to the broker; `start()` it, `send_command(...)`, `stop()` it."""

    def __init__(
        self,
        store: HubStorage,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "tribune-hub",
        reconnect_max: float = 30.0,
        expiry_margin: float = 30.0,
        sweep_interval: float = 1.0,
        publisher: Publisher | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.tls = tls
        self.username = username
        self.password = password
        self.client_id = client_id
        self.reconnect_max = reconnect_max
        self.expiry_margin = expiry_margin
        self.sweep_interval = sweep_interval
        self.publisher = publisher  # signs every command (and, inside, profile pushes)
        self.state = LinkState.DISCONNECTED
        self.connected = asyncio.Event()
        self.connects = 0
        self._wakeup = asyncio.Event()  # a command waits to be published
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start linking (returns at once) and expiring overdue commands."""
        self._tasks = [
            asyncio.create_task(self._supervise(), name="hub-link"),
            asyncio.create_task(self._sweep(), name="hub-expiry"),
        ]

    @property
    def running(self) -> bool:
        """Whether it was started and none of its tasks has ended (the systemd watchdog)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def stop(self) -> None:
        """Disconnect and stop the tasks."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def send_command(
        self,
        rooms: Sequence[str],
        action: str,
        args: dict[str, Any],
        issued_by: str,
        ttl_s: float,
    ) -> str:
        """Record a command as `queued` for each room and have it published; its id."""
        if action not in ACTIONS:
            raise ValueError(f"action: want one of {', '.join(ACTIONS)}")
        for room in rooms:
            check_room_id(room)
        command = HubCommand(str(uuid.uuid4()), action, args, issued_by, time.time() + ttl_s)
        await self.store.add_command(command, rooms)
        self._wakeup.set()
        return command.id

    # --- the link ----------------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = Backoff(RECONNECT_MIN, max(RECONNECT_MIN, self.reconnect_max), jitter=0.3)
        failures = 0
        while not self._stopping.is_set():
            self.state = LinkState.CONNECTING
            try:
                async with self._client() as client:
                    self.state = LinkState.CONNECTED
                    self.connects += 1
                    failures = 0
                    backoff.reset()
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.INFO
                log.log(level, "hub: broker %s:%d: %s", self.host, self.port, exc)
            except Exception:
                log.exception("hub: link failure")
            finally:
                self.connected.clear()
                self.state = LinkState.DISCONNECTED
            pause = backoff.next_delay()
            log.info("hub: reconnecting in %.1f s", pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    def _client(self) -> aiomqtt.Client:
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.SessionExpiryInterval = SESSION_EXPIRY
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            timeout=CONNECT_TIMEOUT,
            properties=connect,
            tls_context=self.tls,
            logger=logging.getLogger("tribune.hub.mqtt"),
        )
        manual_acks(client)  # a message is acknowledged once stored, not on arrival
        guard_sockets(client)  # no writer on a socket closed (or reused) meanwhile
        return client

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe([(f"{PREFIX}/+/+/{suffix}", 1) for suffix in SUBSCRIPTIONS])
        self.connected.set()
        log.warning("hub: linked to %s:%d as %s", self.host, self.port, self.client_id)
        self._wakeup.set()  # commands queued while the link was down
        loops = [
            asyncio.create_task(self._receive(client), name="hub-receive"),
            asyncio.create_task(self._publish_queued(client), name="hub-publish"),
        ]
        try:
            await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in loops:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for task in loops:
            if task.done() and not task.cancelled():
                task.result()  # the reason the link broke

    async def _receive(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        async for first in messages:
            batch = [first]
            # What has arrived meanwhile goes in the same transaction: after a broker restart
            # a thousand rooms' backlogs arrive at once.
            while len(messages) and len(batch) < RECEIVE_BATCH:
                batch.append(await anext(messages))
            now = time.time()
            taken: list[Incoming] = []
            for message in batch:
                try:
                    taken.append(parse_message(str(message.topic), _bytes(message.payload), now))
                except (ValueError, TypeError, KeyError) as exc:
                    # One room sending garbage must not stop the hub hearing the others.
                    log.warning("hub: %s: ignored: %s", message.topic, exc)
            await self._store(taken)
            # Stored (or refused for good): now the broker may forget them. Anything else raised
            # breaks the link unacknowledged, and the broker sends them again on the next connect.
            for message in batch:
                ack(client, message)

    async def take(self, topic: str, payload: bytes) -> None:
        """Store one message from a room (`ValueError` when it breaks the contract)."""
        await self._store([parse_message(topic, payload, time.time())])

    async def _store(self, taken: list[Incoming]) -> None:
        if not taken:
            return
        kept = await self.store.take_in(taken)
        for message, changed in zip(taken, kept, strict=True):
            if message.kind == "result" and not changed:
                command_id = message.payload["id"]
                log.info(
                    "hub: %s answered command %s the hub never sent it", message.room, command_id
                )

    async def _publish_queued(self, client: aiomqtt.Client) -> None:
        while True:
            self._wakeup.clear()
            deliveries = await self.store.queued(BATCH)
            if not deliveries:
                await self._wakeup.wait()
                continue
            sent = await asyncio.gather(
                *(self._publish(client, d.command, d.room) for d in deliveries),
                return_exceptions=True,
            )
            for delivery, outcome in zip(deliveries, sent, strict=True):
                if outcome is None:
                    await self.store.mark_delivered(delivery.command.id, delivery.room)
            for outcome in sent:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _publish(self, client: aiomqtt.Client, command: HubCommand, room: str) -> None:
        deadline = iso(datetime.fromtimestamp(command.deadline, UTC))
        args = command.args
        if command.action == "profile.push" and self.publisher is not None:
            message = push_message(command.id, deadline, str(args.get("sha256", "")))
            args = {**args, "signature": self.publisher.sign(message)}
        body = {
            "id": command.id,
            "action": command.action,
            "args": args,
            "issued_by": command.issued_by,
            "deadline": deadline,
            "room": room,
        }
        if self.publisher is not None:
            body["signature"] = self.publisher.sign(command_message(body))
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        # At least 1 s even when late: the room must see it to refuse it and say `expired`.
        props.MessageExpiryInterval = max(1, math.ceil(command.deadline - time.time()))
        props.ContentType = "application/json"
        await client.publish(Topics(room).cmd, json.dumps(body), qos=1, properties=props)

    # --- expiry ------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            now = time.time()
            try:
                overdue = await self.store.expire_overdue(now - self.expiry_margin, now)
                for command_id, room in overdue:
                    log.warning("hub: command %s: no result from %s in time", command_id, room)
            except Exception:
                log.exception("hub: expiry sweep failed")
            await asyncio.sleep(self.sweep_interval)


def parse_message(topic: str, payload: bytes, now: float) -> Incoming:
    """A room's message checked against the contract (`ValueError` saying what breaks it)."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != PREFIX:
        raise ValueError("not a room topic")
    room, suffix = f"{parts[2]}/{parts[3]}", "/".join(parts[4:])
    try:
        data = json.loads(payload)
    except RecursionError:  # `[[[[...` a few thousand deep
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise ValueError("want a JSON object")
    # What the store binds as SQL values must be one; nothing may nest past what it can encode.
    if nested_deeper_than(data, MAX_DEPTH):
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if not _scalar(data.get("at")):
        raise ValueError("at: want a time")
    if suffix == "status":
        if data.get("status") not in ("online", "offline"):
            raise ValueError(f"status {data.get('status')!r}")
        return Incoming("status", room, data, now)
    if suffix == "state":
        if not _count(data.get("revision")) or not isinstance(data.get("snapshot"), dict):
            raise ValueError("state: want an integer revision and a snapshot object")
        return Incoming("state", room, data, now)
    if suffix == "events":
        if not _count(data.get("seq")):
            raise ValueError("events: want an integer seq")
        entry = data.get("data")
        plain = isinstance(entry, dict) and all(
            _scalar(entry.get(key)) for key in ("id", "at", "who", "actor")
        )
        if data.get("type") == "help" and isinstance(entry, dict) and not plain:
            raise ValueError("help: want id, at, who and actor as plain values")
        return Incoming("event", room, data, now)
    if suffix == "cmd/result":
        command_id, status = data.get("id"), data.get("status")
        if not isinstance(command_id, str) or status not in RESULTS:
            raise ValueError(f"result for {command_id!r}: status {status!r}")
        return Incoming("result", room, data, now)
    raise ValueError(f"topic {suffix!r} is not one a room sends")


def _count(value: Any) -> bool:
    """A revision or sequence number SQLite can keep (64-bit, not negative, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _scalar(value: Any) -> bool:
    """A value SQLite can bind: none, text, a number within 64 bits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**63
    return value is None or isinstance(value, str | float | bool)


def check_room_id(room: str) -> None:
    """`ValueError` unless `room` is `site/room` of safe characters (no MQTT wildcards)."""
    parts = room.split("/")
    if len(parts) != 2 or not all(ROOM_PART.match(part) for part in parts):
        raise ValueError(f"room {room!r}: want site/room of A-Z a-z 0-9 . _ : -")


def _bytes(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else str(payload).encode()
