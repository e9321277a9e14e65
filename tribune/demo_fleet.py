"""`tribune demo --fleet N`: a broker, a hub and N simulated rooms on this machine.

Mosquitto runs on a free loopback port (anonymous: a demo on one machine; the production
broker is `deploy/mosquitto/`). The hub serves the fleet page on `--hub-port` (8090) with an
admin token made for the demo and printed in the page's address. Each room is the real room
code with the real sync client, on one simulated PJLink projector (TCP), spread over the
centres three rooms at a time; `class-start`/`class-end` work from the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from tribune.errors import TribuneError

log = logging.getLogger(__name__)

# 18 centres in 16 cities: Baku has three.
CENTRES = (
    "baku",
    "baku-2",
    "baku-3",
    "ganja",
    "sumgait",
    "mingachevir",
    "shirvan",
    "nakhchivan",
    "lankaran",
    "shaki",
    "yevlakh",
    "guba",
    "shamakhi",
    "gabala",
    "zagatala",
    "barda",
    "jalilabad",
    "khachmaz",
)
ROOMS_PER_CENTRE = ("room-1", "room-2", "lecture")

ROOM_TOML = """\
# Written by `tribune demo --fleet`.
[room]
id = "{room_id}"
name = "{name}"
language = "az"
timezone = "Asia/Baku"

[devices.projector]
profile = "pjlink"
port = "tcp://127.0.0.1:{port}"
name = {{ az = "Proyektor", en = "Projector", ru = "Проектор" }}

[scenes.class-start]
label = {{ az = "Dərsə başla", en = "Start class", ru = "Начать занятие" }}
desired = {{ projector = {{ power = "on", input = "digital1" }} }}

[scenes.class-end]
label = {{ az = "Dərsi bitir", en = "End class", ru = "Завершить занятие" }}
desired = {{ projector = {{ power = "off" }} }}

[sync]
broker = "mqtt://127.0.0.1:{broker_port}"
hub_key_file = "hub.pem"
"""

MOSQUITTO_CONF = """\
# Written by `tribune demo --fleet`: anonymous, loopback only.
listener {port} 127.0.0.1
allow_anonymous true
user {user}
persistence true
persistence_location {folder}/
max_queued_messages 100000
log_dest file {folder}/mosquitto.log
"""


def fleet_room_ids(count: int) -> list[str]:
    """`count` room ids, three per centre, centres in order, then round again."""
    ids: list[str] = []
    round_ = 0
    while len(ids) < count:
        for centre in CENTRES:
            for room in ROOMS_PER_CENTRE:
                suffix = f"-{round_ + 1}" if round_ else ""
                ids.append(f"{centre}/{room}{suffix}")
        round_ += 1
    return ids[:count]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _mosquitto() -> str | None:
    sbin = Path("/usr/sbin/mosquitto")  # Debian's, outside a user's PATH
    return shutil.which("mosquitto") or (str(sbin) if sbin.exists() else None)


async def _start_mosquitto(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = await asyncio.to_thread(_mosquitto)
    if binary is None:
        raise TribuneError("the fleet demo needs Mosquitto: apt-get install mosquitto")
    port = _free_port()
    conf = folder / "mosquitto.conf"
    text = MOSQUITTO_CONF.format(port=port, user=getpass.getuser(), folder=folder)
    await asyncio.to_thread(conf.write_text, text, encoding="utf-8")
    process = subprocess.Popen(  # noqa: ASYNC220, S603 - quick to start; a fixed argv
        [binary, "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C is for us: we stop the broker after the rooms
    )
    for _ in range(100):
        if process.poll() is not None:
            raise TribuneError(f"mosquitto exited; see {folder / 'mosquitto.log'}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return process, port
    process.terminate()
    raise TribuneError("mosquitto did not start listening")


async def run_fleet_demo(
    count: int,
    hub_port: int = 8090,
    speed: float = 10.0,
    data_dir: Path | None = None,
    started: Any = None,
) -> int:
    """Run broker, hub and rooms until SIGINT/SIGTERM; the exit code."""
    import uvicorn

    from tribune.config import parse_config
    from tribune.hub.api import create_hub_app
    from tribune.hub.auth import create_operator
    from tribune.hub.publisher import Publisher
    from tribune.hub.store import HubStore
    from tribune.hub.subscriber import HubSubscriber
    from tribune.profiles.loader import LoadedProfile, ProfileLoader
    from tribune.profiles.store import ProfileStore
    from tribune.room import Room
    from tribune.sim import start_simulator
    from tribune.store import Store
    from tribune.sync import SyncClient

    class SharedLoader(ProfileLoader):
        """Each profile parsed once for all the rooms (each room would parse its own)."""

        def __init__(self) -> None:
            super().__init__()
            self._loaded: dict[str, LoadedProfile] = {}

        def load(self, id_or_path: str | Path) -> LoadedProfile:
            key = str(id_or_path)
            if key not in self._loaded:
                self._loaded[key] = super().load(id_or_path)
            return self._loaded[key]

    with tempfile.TemporaryDirectory(prefix="tribune-fleet-") as scratch:
        folder = data_dir or Path(scratch)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            broker_dir = folder / "broker"
            await asyncio.to_thread(broker_dir.mkdir, exist_ok=True)
            mosquitto, broker_port = await _start_mosquitto(broker_dir)
            stack.callback(_stop, mosquitto)

            store = HubStore(folder / "hub" / "hub.db")
            await store.open()
            stack.push_async_callback(store.close)
            publisher = await asyncio.to_thread(Publisher.load_or_create, folder / "hub")
            hub_pem = publisher.public_pem()
            hub = HubSubscriber(
                store,
                "127.0.0.1",
                broker_port,
                client_id="tribune-hub-demo",
                publisher=publisher,
            )
            await hub.start()
            stack.push_async_callback(hub.stop)
            names = {op["name"] for op in await store.operators()}
            token = None if "demo" in names else await create_operator(store, "demo", "admin")

            loader = SharedLoader()
            rooms: list[tuple[Room, SyncClient]] = []
            gate = asyncio.Semaphore(20)

            async def open_room(room_id: str) -> None:
                async with gate:
                    sim = await stack.enter_async_context(
                        start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=speed)
                    )
                    # Lamps of all ages; every seventh room's is past the 3000 h threshold.
                    index = order[room_id]
                    sim.state.lamp_hours = 3100 + index if index % 7 == 6 else 150 + 37 * index
                    room_dir = folder / "rooms" / room_id.replace("/", "--")
                    await asyncio.to_thread(room_dir.mkdir, parents=True, exist_ok=True)
                    await asyncio.to_thread((room_dir / "hub.pem").write_text, hub_pem)
                    text = ROOM_TOML.format(
                        room_id=room_id,
                        name=room_id.replace("/", " — "),
                        port=sim.port,
                        broker_port=broker_port,
                    )
                    config = parse_config(text, f"{room_id}/room.toml")
                    assert config.sync is not None
                    room_store = Store(room_dir / "tribune.db")
                    await room_store.open()
                    room = Room(
                        config,
                        room_store,
                        base_dir=room_dir,
                        loader=loader,
                        profiles=ProfileStore(room_dir),
                    )
                    await room.start()
                    link = SyncClient(room, config.sync, base_dir=room_dir)
                    await link.start()
                    rooms.append((room, link))

            order = {room_id: i for i, room_id in enumerate(fleet_room_ids(count))}
            await asyncio.gather(*(open_room(room_id) for room_id in order))

            async def close_rooms() -> None:
                for room, link in rooms:
                    await link.stop(timeout=1.0)
                    await room.stop()
                    await room.store.close()

            stack.push_async_callback(close_rooms)

            listening = asyncio.Event()

            class QuietServer(uvicorn.Server):
                """uvicorn without its own signal handlers (ours stop everything in order),
                saying when it listens."""

                @contextlib.contextmanager
                def capture_signals(self) -> Any:
                    yield

                async def startup(self, sockets: Any = None) -> None:
                    await super().startup(sockets)
                    if self.started:
                        listening.set()

            server = QuietServer(
                uvicorn.Config(
                    create_hub_app(hub), host="127.0.0.1", port=hub_port, log_level="warning"
                )
            )
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
            page = f"http://127.0.0.1:{hub_port}/"
            where = f"{page}#token={token}" if token else f"{page} (token: as made before)"
            serving = asyncio.create_task(server.serve())
            try:
                waiting = asyncio.create_task(listening.wait())
                await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if listening.is_set():  # the page answers once it is told
                    log.warning(
                        "fleet demo: %d rooms on broker mqtt://127.0.0.1:%d; fleet page %s",
                        len(rooms),
                        broker_port,
                        where,
                    )
                    if started is not None:
                        await started({"hub": page, "token": token, "broker_port": broker_port})
                await serving
            finally:
                if not serving.done():  # cancelled while it started
                    server.should_exit = True
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await asyncio.wait_for(serving, 5)
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
    return 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
