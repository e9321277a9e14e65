"""The API over the simulated room of tests/room: in-process clients and a real uvicorn socket."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.room.conftest import ROOM_TOML, SPEED, quick
from tribune.api import Tokens, create_app
from tribune.config import RoomConfig, parse_config
from tribune.drivers.runtime import DeviceRuntime, HealthStatus
from tribune.profiles.schema import Profile
from tribune.profiles.store import ProfileStore
from tribune.room import Room, RuntimeFactory
from tribune.sim import RunningSimulator, start_simulator
from tribune.store import Store

TOKENS = Tokens(api="api-token-0123456789abcdef", technician="tech-token-0123456789abcdef")
PORT = 8080  # what the in-process clients claim to have connected to
LOCAL = ("127.0.0.1", 50000)
REMOTE = ("192.0.2.10", 50000)  # TEST-NET-1: a classroom laptop, say


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


def quick_runtimes(config: RoomConfig) -> RuntimeFactory:
    """Runtimes on each device's configured port, with timing sped up like the simulators."""

    def build(device_id: str, profile: Profile) -> DeviceRuntime:
        return DeviceRuntime(device_id, quick(profile), config.devices[device_id].port)

    return build


@dataclass
class Simulated:
    """A started room on simulators, and the simulators (tests may poke their state)."""

    room: Room
    sims: dict[str, RunningSimulator]


@asynccontextmanager
async def simulated_room(folder: Path) -> AsyncIterator[Simulated]:
    """The three-device room of tests/room, started, on simulators sped up by SPEED."""
    async with AsyncExitStack() as stack:
        sims = {
            "projector": await stack.enter_async_context(
                start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=SPEED)
            ),
            "board": await stack.enter_async_context(
                start_simulator("smart-board", pty=True, link=str(folder / "board"), speed=SPEED)
            ),
            "switcher": await stack.enter_async_context(
                start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=SPEED)
            ),
        }
        config = parse_config(
            ROOM_TOML.format(
                projector=f"tcp://127.0.0.1:{sims['projector'].port}",
                board=str(folder / "board"),
                switcher=f"tcp://127.0.0.1:{sims['switcher'].port}",
            ),
            "room.toml",
        )
        store = Store(folder / "tribune.db")
        await store.open()
        stack.push_async_callback(store.close)
        room = Room(
            config,
            store,
            profiles=ProfileStore(folder / "data"),
            runtime_factory=quick_runtimes(config),
        )
        await room.start()
        stack.push_async_callback(room.stop)
        yield Simulated(room, sims)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `predicate`, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.02)


def all_online(room: Room) -> bool:
    """Whether every device answers."""
    return all(rt.health.status is HealthStatus.ONLINE for rt in room.runtimes.values())


@pytest.fixture
async def simulated(tmp_path: Path) -> AsyncIterator[Simulated]:
    async with simulated_room(tmp_path) as sim:
        await until(lambda: all_online(sim.room))
        yield sim


@pytest.fixture
def room(simulated: Simulated) -> Room:
    return simulated.room


@pytest.fixture
def app(room: Room) -> FastAPI:
    return create_app(room, tokens=TOKENS, allowed_hosts=["lectern-12", "10.0.0.5:80"])


def client_for(app: FastAPI, address: tuple[str, int], **kwargs: object) -> httpx.AsyncClient:
    """An in-process client whose requests come from `address` to 127.0.0.1:PORT."""
    transport = httpx.ASGITransport(app=app, client=address)
    return httpx.AsyncClient(
        transport=transport,
        base_url=f"http://127.0.0.1:{PORT}",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def local(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The panel or curl on the lectern PC."""
    async with client_for(app, LOCAL) as client:
        yield client


@pytest.fixture
async def remote(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Another machine on the LAN, without a token unless the test gives one."""
    async with client_for(app, REMOTE) as client:
        yield client


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers (pytest owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    """Serve `app` on a real socket at 127.0.0.1; yields the port."""
    server = QuietServer(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


@dataclass
class Served:
    """A room served over a real socket from a thread of its own (for synchronous clients)."""

    url: str
    room: Room


@contextlib.contextmanager
def served_in_thread(folder: Path) -> Iterator[Served]:
    """Simulators, room and uvicorn running on their own event loop in a background thread."""
    ready = threading.Event()
    found: dict[str, object] = {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        try:
            async with simulated_room(folder) as sim:
                app = create_app(sim.room, tokens=TOKENS)
                async with serving(app) as port:
                    found["served"] = Served(f"http://127.0.0.1:{port}", sim.room)
                    ready.set()
                    await stop.wait()
        except BaseException as exc:
            found["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "the room did not start"
        if "error" in found:
            raise AssertionError(f"the room did not start: {found['error']!r}")
        served = found["served"]
        assert isinstance(served, Served)
        yield served
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()
