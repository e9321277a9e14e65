"""What counts as healthy for the watchdog: an offline device is; a dead runtime task, a dead
reconciler or a runtime wedged in one step is not; a paused device is not looked at. A real room
on simulators (and one wedged transport), watched by `ServiceWatch` on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.notify import NotifySocket
from tests.roundtrip.harness import scaled
from tribune.config import parse_config
from tribune.drivers.runtime import DeviceRuntime
from tribune.drivers.transport import LineSettings, Transport
from tribune.liveness import RoomHealth, stall_limit
from tribune.profiles.loader import ProfileLoader
from tribune.room import Room
from tribune.sim import start_simulator
from tribune.store import Store
from tribune.systemd import Notifier, ServiceWatch

SPEED = 50.0

ROOM = """
[room]
id = "baku/room-1"
name = "watchdog"

[devices.projector]
profile = "pjlink"
port = "tcp://127.0.0.1:{projector}"

[devices.switcher]
profile = "extron-sis"
port = "tcp://127.0.0.1:{switcher}"

[devices.board]
profile = "smart-board"
port = "tcp://127.0.0.1:{nobody}"
"""


class WedgedTransport(Transport):
    """Opens, swallows what is written, never answers, and hangs in close() for good: what a
    USB-serial driver stuck in the kernel looks like from the event loop."""

    async def open(self) -> None:
        self._reset_queue()
        self._closed = False

    def write(self, data: bytes) -> None:
        pass

    async def close(self) -> None:
        await asyncio.Event().wait()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def make_room(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    rooms: list[Room] = []
    async with (
        start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=SPEED) as projector,
        start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=SPEED) as switcher,
    ):
        config = parse_config(
            ROOM.format(projector=projector.port, switcher=switcher.port, nobody=closed_port()),
            "room.toml",
        )
        loader = ProfileLoader()

        async def make(wedged: str | None = None) -> Room:
            store = Store(tmp_path / f"tribune-{len(rooms)}.db")
            await store.open()
            runtimes = {}
            for device_id, dev in config.devices.items():
                factory = None
                if device_id == wedged:

                    def factory(url: str, settings: LineSettings) -> Transport:
                        return WedgedTransport(url)

                profile = scaled(loader.load(dev.profile).profile, SPEED)
                runtimes[device_id] = DeviceRuntime(
                    device_id, profile, dev.port, transport_factory=factory
                )
            room = Room(config, store, runtimes=runtimes)
            await room.start()
            rooms.append(room)
            return room

        yield make
        for room in rooms:
            for runtime in room.runtimes.values():
                runtime.link.close = _no_wait  # type: ignore[method-assign]
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await room.stop()
            await room.store.close()


async def _no_wait() -> None:
    """Stands in for a wedged link's close() at teardown."""


async def test_an_offline_device_is_healthy(make_room: Callable[..., Any]) -> None:
    room: Room = await make_room()
    health = RoomHealth(room, limit=lambda runtime: 1.0)
    await until(health.devices_opened)
    await until(lambda: room.runtimes["switcher"].health.status == "online")
    await until(lambda: room.runtimes["projector"].health.status == "online")
    await asyncio.sleep(2.0)  # the board keeps failing to connect and backing off meanwhile
    assert room.runtimes["board"].health.status == "offline"
    assert health.problem() is None
    assert health.status() == "serving room baku/room-1: 2/3 devices online (offline: board)"


async def test_a_dead_runtime_task_is_a_problem(make_room: Callable[..., Any]) -> None:
    room: Room = await make_room()
    health = RoomHealth(room)
    await until(health.devices_opened)
    assert health.problem() is None
    task = room.runtimes["switcher"]._task
    assert task is not None
    task.cancel()  # as if something outside stop() had ended it
    await until(lambda: health.problem() is not None)
    assert health.problem() == "device switcher: its runtime task has ended"


async def test_a_dead_reconciler_is_a_problem(make_room: Callable[..., Any]) -> None:
    room: Room = await make_room()
    health = RoomHealth(room)
    task = room.reconcilers["projector"]._task
    assert task is not None
    task.cancel()
    await until(lambda: health.problem() is not None)
    assert health.problem() == "device projector: its reconcile task has ended"


async def test_a_paused_device_is_not_looked_at(make_room: Callable[..., Any]) -> None:
    room: Room = await make_room()
    health = RoomHealth(room)
    await room.pause_device("switcher", "flashing extron-sis v2")
    assert health.problem() is None
    assert health.status().startswith("serving room baku/room-1: ")
    assert "paused: switcher" in health.status()
    await room.resume_device("switcher")
    assert health.problem() is None


async def test_a_wedged_runtime_stops_the_pings(make_room: Callable[..., Any]) -> None:
    notify = NotifySocket()
    try:
        room: Room = await make_room(wedged="switcher")
        health = RoomHealth(room, limit=lambda runtime: 1.5)
        watch = ServiceWatch(Notifier(notify.environ()), health.health(), watchdog=0.6, tick=0.05)
        task = asyncio.create_task(watch.run())
        await asyncio.to_thread(notify.wait_for, "READY", 5)
        await asyncio.to_thread(notify.wait_for, "WATCHDOG", 2)
        # The switcher's poll times out, the link is closed, and close() never returns.
        status = await asyncio.to_thread(notify.wait_status, "pings stopped", 10)
        assert "device switcher: its runtime is stuck" in status
        quiet = time.monotonic() + 0.1
        await asyncio.sleep(1.0)
        assert notify.with_key("WATCHDOG", since=quiet) == []
        task.cancel()
    finally:
        notify.close()


def test_stall_limit_follows_the_profile() -> None:
    loader = ProfileLoader()
    projector = DeviceRuntime("p", loader.load("pjlink").profile, "tcp://127.0.0.1:4352")
    switcher = DeviceRuntime("s", loader.load("extron-sis").profile, "tcp://127.0.0.1:23")
    # Well past any step the profile allows, and still a restart within minutes, not hours.
    assert 60.0 <= stall_limit(projector) < 300.0
    assert stall_limit(switcher) > stall_limit(projector)  # four outputs to poll in one step
    assert stall_limit(projector, floor=600.0) == 600.0
