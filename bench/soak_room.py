"""The soak's room and its surroundings: every simulator, a Mosquitto, `tribune serve` as a child
process and a hub in this process. `bench/soak.py` drives them and injects the faults.

- `Simulators`: each of the eleven simulators that has a serial line or a socket, in this
  process (so faults are poked straight into them): nine on line-checked ptys whose symlinks
  stand for `/dev/serial/by-id`, PJLink and Sony (8E1, which a pty refuses) on TCP. (The USB
  relay board has neither: it lives behind a fake pyusb backend inside the process that drives
  it, so it cannot be a child's.)
- `Broker`: Mosquitto on a free loopback port with persistence; `stop()` is SIGTERM, so it
  saves its sessions (a broker that loses its own queue is not what this measures).
- `ServiceProcess`: `python -m tribune -v serve` on the room's config and data dir; `kill9()`
  is SIGKILL. Its stderr goes to one log for every life of it.
- `Hub`: `HubStore` + `HubSubscriber` + the hub's API (through httpx's ASGI transport). The
  store counts every delivery of every (room, seq) and each payload it carried, so a seq that
  came twice with different content shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tribune.hub import HubStore, HubSubscriber
from tribune.hub.api import create_hub_app
from tribune.hub.auth import create_operator
from tribune.hub.publisher import Publisher
from tribune.hub.store import Incoming
from tribune.sim import RunningSimulator, launch_simulator

HOST = "127.0.0.1"
ROOM_ID = "baku/room-1"
SPEED = 10.0  # `tribune demo`'s: a warm-up of 30 s takes 3 s
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


@dataclass(frozen=True)
class DeviceSpec:
    """One device of the room: its simulator and how it is linked."""

    name: str
    sim: str
    serial: bool = True  # a pty; else TCP
    powered: bool = True
    options: dict[str, str] = field(default_factory=dict)


DEVICES = (
    DeviceSpec("projector", "epson-escvp21"),
    DeviceSpec("board", "smart-board"),
    DeviceSpec("switcher", "extron-sis", powered=False),
    DeviceSpec("projector-2", "pjlink", serial=False),
    DeviceSpec("codec", "cisco-roomos", powered=False),
    DeviceSpec("monitor", "samsung-mdc", options={"id": "01"}),
    DeviceSpec("projector-3", "nec-projector"),
    DeviceSpec("matrix", "kramer-p3000", powered=False),
    # 8E1: the service asks for even parity, which a pty refuses (EINVAL); Sony's VPL
    # protocol runs on any TCP port as serial-over-IP, so this one is on TCP.
    DeviceSpec("projector-4", "sony-projector", serial=False),
    DeviceSpec("projector-5", "panasonic-projector"),
    DeviceSpec("display", "lg-display"),
)
SWITCHERS = ("switcher", "matrix")  # both 4x4: input N on every output is source N
SOURCES = ("lectern-pc", "laptop", "document-camera", "teleconference")
POWERED = tuple(d.name for d in DEVICES if d.powered)


def source_desired(source: str) -> dict[str, dict[str, Any]]:
    """What showing `source` sets: every output of both switchers to its input."""
    number = str(SOURCES.index(source) + 1)
    return {name: {"route": {str(out): number for out in range(1, 5)}} for name in SWITCHERS}


SCENES: dict[str, dict[str, Any]] = {
    "class-start": {
        "source": "lectern-pc",
        "desired": {
            **{name: {"power": "on"} for name in POWERED},
            "projector": {"power": "on", "input": "hdmi1"},
        },
    },
    "class-end": {"source": None, "desired": {name: {"power": "off"} for name in POWERED}},
}


def _inline(value: Any) -> str:
    """TOML for a value of strings and tables (inline tables)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_inline(v)}' for k, v in value.items()) + " }"
    return json.dumps(value)


def room_toml(ports: dict[str, str], broker_url: str, hub_key: Path) -> str:
    """The room's config: every device on its simulator, two scenes, four sources, `[sync]`
    with the hub's public key (so every hub command is signed and checked, as in production)."""
    label = '{ az = "x", en = "x", ru = "x" }'
    lines = ["[room]", f'id = "{ROOM_ID}"', 'name = "Soak room"', 'timezone = "Asia/Baku"', ""]
    for device in DEVICES:
        lines += [f'[devices."{device.name}"]', f'profile = "{device.sim}"']
        lines.append(f"port = {json.dumps(ports[device.name])}")
        if device.options:
            lines.append(f"options = {_inline(device.options)}")
        lines.append("")
    for order, source in enumerate(SOURCES, 1):
        lines += [f'[sources."{source}"]', f"label = {label}", f"order = {order}"]
        lines += [f"desired = {_inline(source_desired(source))}", ""]
    for order, (scene, body) in enumerate(SCENES.items(), 1):
        lines += [f'[scenes."{scene}"]', f"label = {label}", f"order = {order}"]
        if body["source"] is not None:
            lines.append(f'source = "{body["source"]}"')
        lines += [f"desired = {_inline(body['desired'])}", ""]
    lines += ["[panel]", 'volume = "switcher"', 'mute = "switcher"', ""]
    lines += ["[sync]", f'broker = "{broker_url}"', "reconnect_max = 5", "state_min_interval = 0.5"]
    lines.append(f"hub_key_file = {json.dumps(str(hub_key))}")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


# --- the simulators ------------------------------------------------------------------------------


class Simulators:
    """Every device's simulator, serving in this process's event loop."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, RunningSimulator] = {}

    async def start(self) -> dict[str, str]:
        """Start them all; each device's port as room.toml names it."""
        ports: dict[str, str] = {}
        for device in DEVICES:
            if device.serial:
                link = str(self.folder / device.name)
                sim = await launch_simulator(
                    device.sim, pty=True, link=link, check_line=True, speed=SPEED
                )
                ports[device.name] = link
            else:
                sim = await launch_simulator(device.sim, tcp=(HOST, 0), speed=SPEED)
                ports[device.name] = f"tcp://{HOST}:{sim.port}"
            self.running[device.name] = sim
        return ports

    async def stop(self) -> None:
        """Stop every simulator."""
        for sim in self.running.values():
            await sim.aclose()

    def serial(self) -> list[str]:
        """Devices on a pty."""
        return [d.name for d in DEVICES if d.serial]

    def network(self) -> list[str]:
        """Devices on TCP."""
        return [d.name for d in DEVICES if not d.serial]

    async def heal(self) -> None:
        """Every fault cleared, every pty plugged in, every TCP port listening."""
        for device in DEVICES:
            sim = self.running[device.name]
            sim.faults.clear()
            if device.serial:
                assert sim.pty is not None
                if not sim.pty.plugged:
                    sim.pty.plug()
            else:
                assert sim.tcp is not None
                if not sim.tcp.running:
                    await sim.start_tcp()


# --- Mosquitto ------------------------------------------------------------------------------------


class Broker:
    """A Mosquitto process on a free loopback port; `stop()` then `start()` keeps its sessions."""

    def __init__(self, folder: Path) -> None:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:PORT`."""
        return f"mqtt://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is up."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start and wait until it takes connections."""
        assert MOSQUITTO is not None
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {HOST}\n"
            # As root it would switch to `mosquitto`, who cannot read this folder.
            f"user {getpass.getuser()}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.folder}/\n"
            # The shipped broker's limits (deploy/mosquitto/tribune.conf).
            "autosave_interval 60\n"
            "max_queued_messages 200000\nmax_queued_bytes 536870912\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )
        with (self.folder / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """SIGTERM: it saves its persistence file and exits."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(10)
        if self.process is process:  # not one started meanwhile
            self.process = None

    def log_tail(self) -> str:
        """The end of its log."""
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


# --- the room service ---------------------------------------------------------------------------


# `python -X tracemalloc=10 -c TRACEMALLOC DIR ARGS...`: `tribune ARGS...`, its heap dumped to
# DIR/PID-N.snapshot every minute after a full collection (`tracemalloc.Snapshot.load`, then
# `compare_to`).
TRACEMALLOC = """
import gc, os, sys, threading, time, tracemalloc
folder = sys.argv[1]
def dump():
    for n in range(1, 10**6):
        time.sleep(60)
        gc.collect()  # what is only waiting for the cycle collector is no leak
        tracemalloc.take_snapshot().dump(os.path.join(folder, f"{os.getpid()}-{n}.snapshot"))
threading.Thread(target=dump, daemon=True).start()
from tribune.cli import main
sys.exit(main(sys.argv[2:]))
"""


class ServiceProcess:
    """`tribune serve` as a child process: started, killed with SIGKILL, started again."""

    def __init__(
        self, config: Path, data: Path, log: Path, *, tracemalloc: Path | None = None
    ) -> None:
        self.config = config
        self.data = data
        self.log = log
        self.tracemalloc = tracemalloc  # snapshots of the service's heap go here, every minute
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # time.monotonic() of the current life
        self.lives = 0

    @property
    def pid(self) -> int | None:
        """The current process's id while it runs."""
        if self.process is None or self.process.poll() is not None:
            return None
        return self.process.pid

    async def start(self, http: httpx.AsyncClient, timeout: float = 30.0) -> None:
        """Start it and wait until its API answers."""
        self.process = await asyncio.to_thread(self._spawn)
        self.started_at = time.monotonic()
        self.lives += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tribune serve exited with {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{self.base}/api/v1/health", timeout=1.0)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError("tribune serve did not answer in time")

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            log.write(f"--- soak: start #{self.lives + 1}\n".encode())
            log.flush()
            python = [sys.executable, "-m", "tribune"]
            if self.tracemalloc is not None:
                python = [sys.executable, "-X", "tracemalloc=10", "-c", TRACEMALLOC,
                          str(self.tracemalloc)]  # fmt: skip
            return subprocess.Popen(
                [*python, "-v", "serve", "--config", str(self.config),
                 "--data-dir", str(self.data), "--port", str(self.port)],
                stdout=subprocess.DEVNULL, stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    async def kill9(self) -> None:
        """SIGKILL: no clean shutdown, no `offline` of its own, nothing flushed."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait, 10)
        if self.process is process:  # not one started meanwhile
            self.process = None

    async def stop(self) -> int | None:
        """SIGTERM and wait: its exit code (None when it was not running)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.terminate()
        try:
            return await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)
            return -9


# --- the hub ------------------------------------------------------------------------------------


class CountingHubStore(HubStore):
    """The hub's store, counting each delivery of each (room, seq) and the payloads it carried
    (the subscriber hands over what arrived together through `take_in`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.deliveries: Counter[int] = Counter()
        self.digests: dict[int, set[str]] = {}

    async def take_in(self, messages: Sequence[Incoming]) -> list[bool]:
        """As the store's, each of the room's events counted first."""
        for message in messages:
            if message.kind == "event" and message.room == ROOM_ID:
                seq = int(message.payload["seq"])
                self.deliveries[seq] += 1
                text = json.dumps(message.payload, sort_keys=True)
                self.digests.setdefault(seq, set()).add(hashlib.sha256(text.encode()).hexdigest())
        return await super().take_in(messages)


@dataclass
class Hub:
    """The hub's parts and a client on its API with an operator's token."""

    store: CountingHubStore
    link: HubSubscriber
    http: httpx.AsyncClient
    public_pem: str  # its publisher key, for the room's `hub_key_file`


@contextlib.asynccontextmanager
async def running_hub(broker: Broker, folder: Path, *, expiry_margin: float) -> AsyncIterator[Hub]:
    """A hub (store, link, API) on `broker`, its database in `folder`."""
    store = CountingHubStore(folder / "hub.db")
    await store.open()
    publisher = await asyncio.to_thread(Publisher.load_or_create, folder)
    link = HubSubscriber(
        store,
        HOST,
        broker.port,
        client_id="tribune-hub",
        reconnect_max=2.0,
        expiry_margin=expiry_margin,
        sweep_interval=0.5,
        publisher=publisher,
    )
    await link.start()
    try:
        token = await create_operator(store, "soak", "operator")
        transport = httpx.ASGITransport(app=create_hub_app(link))
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hub", headers=headers
        ) as http:
            yield Hub(store, link, http, publisher.public_pem())
    finally:
        await link.stop()
        await store.close()
