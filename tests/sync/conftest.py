"""A real Mosquitto on a free loopback port, a subscriber helper, and the simulated room."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.room.conftest import SimRoom, sim_room  # noqa: F401 - the fixture, for tests here
from tribune.config import SyncSection
from tribune.room import Room
from tribune.sync import SyncClient

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Broker:
    """A Mosquitto process with its config; `restart()` keeps its port and persistence."""

    folder: Path
    port: int
    extra: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:PORT`."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait until the port takes connections."""
        assert MOSQUITTO is not None
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # As root it would switch to `mosquitto`, who cannot read the test's files.
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {self.folder}/\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\n" + (self.extra or "allow_anonymous true\n")
        )
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "mosquitto.log", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.folder / "mosquitto.log").read_text(errors="replace")
                raise RuntimeError(f"mosquitto exited: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """Stop (SIGTERM: it saves its persistence file)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def _require_mosquitto() -> None:
    if MOSQUITTO is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "mosquitto is not installed (CI must install it: apt-get install mosquitto)"
            )
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); sync tests need it")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """An anonymous Mosquitto on a free loopback port."""
    _require_mosquitto()
    folder = tmp_path / "broker"
    folder.mkdir()
    running = Broker(folder, free_port())
    running.start()
    yield running
    running.stop()


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Any]:
    """A Mosquitto with extra config (listeners, password file, ACL) given by the test."""
    _require_mosquitto()
    started: list[Broker] = []

    def make(extra: str, port: int | None = None) -> Broker:
        folder = tmp_path / f"broker{len(started)}"
        folder.mkdir()
        running = Broker(folder, port or free_port(), extra=extra)
        running.start()
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@dataclass
class Listener:
    """Messages seen by a test subscriber: (topic, payload JSON or text, retain)."""

    messages: list[tuple[str, Any, bool]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on(self, topic_suffix: str) -> list[Any]:
        """Payloads of topics ending in `topic_suffix`."""
        return [p for t, p, _ in self.messages if t.endswith("/" + topic_suffix)]

    async def wait_for(self, check: Any, timeout: float = 5.0) -> None:
        """Until `check()` is true."""
        deadline = time.monotonic() + timeout
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; seen: {self.messages[-10:]}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), min(left, 0.2))
            except TimeoutError:
                pass


@asynccontextmanager
async def listening(
    port: int,
    topic: str = "tribune/v1/#",
    *,
    identifier: str | None = None,
    persistent: bool = False,
    listener: Listener | None = None,
) -> AsyncIterator[Listener]:
    """Subscribe (QoS 1) and collect messages while the block runs."""
    seen = listener or Listener()
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=not persistent,
        properties=_session(3600) if persistent else None,
    ) as client:
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                raw = message.payload
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = text
                seen.messages.append((str(message.topic), payload, bool(message.retain)))
                seen.arrived.set()

        task = asyncio.create_task(collect())
        try:
            yield seen
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def _session(seconds: int) -> Any:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = seconds
    return props


async def publish(port: int, topic: str, payload: bytes | str, **options: Any) -> None:
    """Publish one message as an anonymous client (the hub's part in these tests)."""
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.publish(topic, payload, qos=1, **options)


@pytest.fixture
async def room(sim_room: SimRoom) -> AsyncIterator[Room]:  # noqa: F811 - the fixture above
    """The simulated room, started (without a link), closed after the test."""
    started: Room = await sim_room.make()
    await started.start()
    try:
        yield started
    finally:
        await started.stop()
        await started.store.close()


def sync_settings(url: str, **extra: Any) -> SyncSection:
    """A `[sync]` section for tests: quick state refresh, quick reconnect."""
    return SyncSection.model_validate(
        {"broker": url, "state_min_interval": 0.1, "reconnect_max": 1.0, **extra}
    )


@asynccontextmanager
async def linked_room(
    sim: SimRoom, url: str, **extra: Any
) -> AsyncIterator[tuple[Room, SyncClient]]:
    """The simulated room, started, with its sync client."""
    room: Room = await sim.make()
    await room.start()
    link = SyncClient(room, sync_settings(url, **extra), base_dir=sim.data_dir)
    await link.start()
    try:
        yield room, link
    finally:
        await link.stop()
        await room.stop()
        await room.store.close()
