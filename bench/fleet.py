"""A fleet of rooms against one broker and one hub: change -> hub latency, hub cost; prints JSON.

    .venv/bin/python bench/fleet.py [--rooms N] [--samples S] [--workers W]
                                    [--state-min-interval SECONDS] [--rate PER_S]
                                    [--idle-seconds S] [--no-burst] [--burst-rooms N]
                                    [--no-poll] [--max-queued-messages N]
                                    [--json-out FILE] [--logs DIR] [--quick]

Processes: one Mosquitto (`/usr/sbin/mosquitto`, a free loopback port, `max_connections -1`,
otherwise its defaults), one hub (`python -m tribune hub --broker ... --port ... --data-dir ...`,
its own process so its CPU and RSS are read from /proc), `--workers` room processes (this script
with `--serve-rooms`, default 2 = the cores of the reference box) each running its share of the
N rooms in ONE asyncio loop, and this process, which drives the changes and reads the hub's API.
Every process started here is stopped on the way out, on error too.

Each room is the production code path, made light where the box packs a thousand rooms:

- a `room.toml` text (`parse_config`) with one device, an Extron switcher (`extron-sis`, the
  shipped profile and its poll plan, unless `--no-poll`), two sources that route it, and a
  `[sync]` section (`state_min_interval` from `--state-min-interval`, default the production 1 s);
- the device is the Extron simulator (`tribune.sim`) on its own loopback TCP port, in the same
  loop: a real socket, a real `DeviceRuntime`, real SIS bytes;
- a real `Store` (SQLite, WAL, `synchronous=FULL`, its own thread) per room; the rooms' files
  live on /dev/shm when it exists (a thousand rooms' fsyncs on one disk is not what a fleet of
  lectern PCs does), reported as `room_data_filesystem`; the hub's on the temp dir's disk;
- a real `Room` (built by itself from the config, as `tribune serve` does) and the real
  `tribune.sync.SyncClient`; the only shortcut is a profile loader that parses the profile YAML
  once per process instead of once per room.

Measured:

- `startup`: from spawning the room processes until the hub's `GET /api/v1/rooms` lists all N
  rooms `online` (`all_online_s`) and with a state revision (`all_with_state_s`); when the room
  processes had built and started every room (`rooms_started_s`).
- `change_to_hub_ms`: `Room.select_source` in one room (stamped with `time.monotonic_ns` just
  before the call, in the room's process; CLOCK_MONOTONIC is system-wide) until the hub's
  `GET /api/v1/rooms/{site}/{room}` shows that source with a revision above the one before the
  change (stamped when that answer arrived, so the figure is an upper bound; resolution
  `api_poll_interval_ms`). The rooms are taken in a shuffled order, at `--rate` changes per
  second over the fleet, never a room that changed in the last 2 x `state_min_interval`: the
  rest of the fleet is idle. The room re-publishes its state `state_min_interval` after the
  first change it sees, so the figure holds that interval: `beyond_state_interval_ms` is the
  rest. Polling a room starts at 0.9 x `state_min_interval` (no answer can come sooner);
  `visible_at_first_poll` counts samples where even the first poll saw it (resolution lost).
  A subscriber of this script to every room's `state` splits the figure in two:
  `change_to_broker_ms` (the room's side and the broker) and `broker_to_hub_api_ms` (the hub's
  intake, its store and the API, poll resolution included).
- `burst`: every room (`--burst-rooms`) changes source at once; `GET /api/v1/rooms` is polled
  every `api_poll_interval_ms` (plus the time that call takes, `api_requests.list_ms`) until
  each shows a revision above its own before the change; the same split in two. Then, untimed,
  every room's hub page is checked: the new source (`source_mismatch`), and gaps in the `seq` of
  its latest 50 events (`events_missing_in_hub`); `timed_out_after_the_broker` counts rooms whose
  new state went through the broker but never showed in the hub (the broker's log says whether
  it dropped messages for a slow subscriber: `broker.dropped_lines_in_log`). The rooms' side of
  a burst is 500 rooms per core here, not one lectern PC each: read `broker_to_hub_api_ms`.
- CPU (utime + stime from /proc/PID/stat, % of one core) of the hub, the broker and the room
  processes over each window (`startup`, `idle`: nothing asked of anyone, `samples`: including
  this script's API polls, counted in `api_requests`, and `burst`); RSS now and peak (VmHWM)
  of the hub and the broker; RSS, threads and file descriptors of the room processes. `box`:
  the whole machine's busy time (/proc/stat) and what processes other than these took: a busy
  neighbour on the box shows there, and the figures are then not the fleet's alone.

API calls carry `Authorization: Bearer TOKEN`, the token made with `tribune hub token create
fleet-bench --role viewer --data-dir DIR` before the hub starts; while that command does not
exist the header is sent anyway (with a placeholder) and `auth.token_created` is false.

Budget: with N = 1000 rooms, state change -> visible in the hub p99 < 1 s (`within_budget` is
the check on this run's figures; `budget_scale_reached` says whether N was 1000 or more).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import math
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import aiomqtt
import httpx

HOST = "127.0.0.1"
DEFAULT_ROOMS = 54  # 18 centres x 3 rooms
ROOMS_PER_CENTRE = 3
DEFAULT_SAMPLES = 200
DEFAULT_WORKERS = 2
DEFAULT_RATE = 5.0  # changes per second over the fleet while sampling
DEFAULT_IDLE_SECONDS = 10.0
DEFAULT_STATE_MIN_INTERVAL = 1.0  # the production default of [sync] state_min_interval
QUICK = {"rooms": 3, "samples": 6, "workers": 1, "idle_seconds": 1.0, "state_min_interval": 0.2}
BUDGET = {"rooms": 1000, "change_to_hub_p99_ms": 1000.0}
SOURCES = ("lectern-pc", "laptop")
REVISION = "sync.state_revision"
API = "/api/v1"
SAMPLE_POLL_SECONDS = 0.01
BURST_POLL_SECONDS = 0.05
STARTUP_POLL_SECONDS = 0.2
FIRST_POLL_SECONDS = 0.02
SAMPLE_TIMEOUT = 15.0  # beyond state_min_interval
BURST_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0
START_CONCURRENCY = 32  # rooms being built at once in one room process
FDS_PER_ROOM = 10  # MQTT socket, device socket both ends, listener, SQLite files, spare
SEED = 5
LIST_ROOMS_QUIET = 10  # timed `GET /rooms` once the fleet is quiet
SCRIPT = Path(__file__).resolve()
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)

ROOM_TOML = """
[room]
id = "{room_id}"
name = "Fleet bench {room_id}"

[devices.switcher]
profile = "extron-sis"
port = "tcp://{host}:{port}"
poll = {poll}

[sources.lectern-pc]
label = {{ az = "Tribuna kompüteri", en = "Lectern PC", ru = "Компьютер трибуны" }}
desired = {{ switcher = {{ route = {{ "1" = "1", "2" = "1" }} }} }}

[sources.laptop]
label = {{ az = "Noutbuk", en = "Laptop", ru = "Ноутбук" }}
desired = {{ switcher = {{ route = {{ "1" = "2", "2" = "2" }} }} }}

[sync]
broker = "{broker}"
state_min_interval = {interval}
"""

Stats = dict[str, float | int]


def summarize(samples_ns: list[int]) -> Stats:
    """p50/p99/max in milliseconds (nearest rank) and the sample count."""
    if not samples_ns:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan, "n": 0}
    ordered = sorted(samples_ns)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] / 1e6

    return {
        "p50": round(rank(50), 3),
        "p99": round(rank(99), 3),
        "max": round(ordered[-1] / 1e6, 3),
        "n": len(ordered),
    }


def room_ids(count: int) -> list[str]:
    """`centre-01/room-1`, `centre-01/room-2`, ... (three rooms a centre)."""
    width = max(2, len(str(math.ceil(count / ROOMS_PER_CENTRE))))
    return [
        f"centre-{i // ROOMS_PER_CENTRE + 1:0{width}d}/room-{i % ROOMS_PER_CENTRE + 1}"
        for i in range(count)
    ]


def raise_nofile(wanted: int) -> dict[str, int]:
    """Raise the soft RLIMIT_NOFILE towards `wanted` (children inherit it); the limits now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return {"soft": int(soft), "hard": int(hard), "wanted": wanted}


# --- the room side (`--serve-rooms`): many rooms in one loop ------------------------------------


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve_rooms() -> None:
    """Build the rooms named on stdin's first line, take changes, stop them all at EOF."""
    from tribune.config import parse_config
    from tribune.profiles.loader import LoadedProfile, ProfileLoader
    from tribune.room import Room
    from tribune.sim.runner import RunningSimulator, launch_simulator
    from tribune.store import Store
    from tribune.sync import SyncClient

    class OnceLoader(ProfileLoader):
        """Parses each profile once per process (a real room parses it once on its own box)."""

        _cache: dict[str, LoadedProfile]

        def load(self, id_or_path: str | Path) -> LoadedProfile:
            key = str(id_or_path)
            cache = self.__dict__.setdefault("_cache", {})
            if key not in cache:
                cache[key] = super().load(id_or_path)
            loaded: LoadedProfile = cache[key]
            return loaded

    @dataclass
    class FleetRoom:
        room: Room
        link: SyncClient
        sim: RunningSimulator

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=2**22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    spec = json.loads(await stdin.readline())
    raise_nofile(len(spec["rooms"]) * FDS_PER_ROOM + 1000)
    data_dir = Path(spec["data_dir"])
    loader = OnceLoader()
    base_rss_mb = proc_status(os.getpid()).get("rss_mb", 0.0)  # everything imported, no room
    rooms: dict[str, FleetRoom] = {}
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def open_room(room_id: str) -> None:
        async with gate:
            folder = data_dir / room_id
            folder.mkdir(parents=True, exist_ok=True)
            sim = await launch_simulator("extron-sis", tcp=(HOST, 0))
            text = ROOM_TOML.format(
                room_id=room_id,
                host=HOST,
                port=sim.port,
                poll="true" if spec["poll"] else "false",
                broker=spec["broker"],
                interval=spec["state_min_interval"],
            )
            config = parse_config(text, f"{room_id}/room.toml")
            assert config.sync is not None
            store = Store(folder / "tribune.db")
            await store.open()
            room = Room(config, store, base_dir=folder, loader=loader)
            await room.start()
            link = SyncClient(room, config.sync, base_dir=folder)
            await link.start()
            rooms[room_id] = FleetRoom(room, link, sim)

    async def close_room(fleet_room: FleetRoom) -> None:
        await fleet_room.link.stop()
        await fleet_room.room.stop()
        await fleet_room.room.store.close()
        await fleet_room.sim.aclose()

    async def revision(room_id: str) -> int:
        return int(await rooms[room_id].room.store.get_meta(REVISION) or 0)

    async def change(room_id: str, source: str) -> int:
        started = time.monotonic_ns()
        await rooms[room_id].room.select_source(source, who="api", actor="fleet-bench")
        return started

    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "change":
            before = await revision(request["room"])
            started = await change(request["room"], request["source"])
            return {"t0_ns": started, "revision_before": before}
        if request["op"] == "burst":
            pairs = [(str(r), str(s)) for r, s in request["changes"]]
            befores = await asyncio.gather(*(revision(r) for r, _ in pairs))
            starts = await asyncio.gather(*(change(r, s) for r, s in pairs))
            return {
                "results": {
                    r: {"t0_ns": t0, "revision_before": before}
                    for (r, _), t0, before in zip(pairs, starts, befores, strict=True)
                }
            }
        if request["op"] == "event_seqs":
            seqs = await asyncio.gather(
                *(rooms[r].room.store.get_meta("sync.event_seq") for r in rooms)
            )
            return {"seqs": {r: int(seq or 0) for r, seq in zip(rooms, seqs, strict=True)}}
        raise ValueError(f"unknown op {request['op']!r}")

    async def answer(request: dict[str, Any]) -> None:
        try:
            reply = await handle(request)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        _emit({"id": request["id"], **reply})

    started = time.monotonic()
    opened = await asyncio.gather(*(open_room(r) for r in spec["rooms"]), return_exceptions=True)
    failures = [f"{type(e).__name__}: {e}" for e in opened if isinstance(e, BaseException)]
    if failures:
        _emit({"event": "failed", "error": failures[0], "failures": len(failures)})
    else:
        seconds = round(time.monotonic() - started, 3)
        _emit(
            {"event": "ready", "rooms": len(rooms), "seconds": seconds, "base_rss_mb": base_rss_mb}
        )
        running: set[asyncio.Task[None]] = set()
        while line := await stdin.readline():
            task = asyncio.create_task(answer(json.loads(line)))
            running.add(task)
            task.add_done_callback(running.discard)
        for task in list(running):
            task.cancel()
    await asyncio.gather(*(close_room(r) for r in rooms.values()), return_exceptions=True)
    _emit({"event": "stopped"})


# --- processes and /proc ------------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (all its threads, no children), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, float | int]:
    """RSS and peak RSS (MB), threads and open file descriptors of process `pid`."""
    values: dict[str, float | int] = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = row.partition(":")
        if key == "VmRSS":
            values["rss_mb"] = round(int(rest.split()[0]) / 1024, 1)
        elif key == "VmHWM":
            values["peak_rss_mb"] = round(int(rest.split()[0]) / 1024, 1)
        elif key == "Threads":
            values["threads"] = int(rest)
    with contextlib.suppress(OSError):
        values["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return values


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding `path` (from /proc/mounts)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    with contextlib.suppress(OSError):
        for row in Path("/proc/mounts").read_text().splitlines():
            parts = row.split()
            mount = parts[1]
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best):
                best, kind = mount, parts[2]
    return kind


def box_busy_seconds() -> float:
    """CPU time every core of the machine spent busy (from /proc/stat), in seconds."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuWindows:
    """CPU time of named processes between `mark()` calls, as % of one core per window.

    Also `box` (every process on the machine) and `others` (`box` less the named ones): the
    reference box is shared, and a busy neighbour shows here.
    """

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.windows: dict[str, dict[str, float]] = {name: {} for name in [*pids, "box", "others"]}
        self.seconds: dict[str, float] = {}
        self._at = time.monotonic()
        self._cpu = self._read()

    def _read(self) -> dict[str, float]:
        totals = {}
        for name, pids in self.pids.items():
            total = 0.0
            for pid in pids:
                with contextlib.suppress(OSError):
                    total += cpu_seconds(pid)
            totals[name] = total
        totals["box"] = box_busy_seconds()
        totals["others"] = totals["box"] - sum(totals[name] for name in self.pids)
        return totals

    def mark(self, window: str | None) -> None:
        """Close the window running since the last mark (named `window`, or not kept)."""
        now, cpu = time.monotonic(), self._read()
        wall = max(now - self._at, 1e-9)
        if window is not None:
            self.seconds[window] = round(wall, 2)
            for name in self.windows:
                share = 100 * (cpu[name] - self._cpu[name]) / wall
                self.windows[name][window] = round(share, 2)
        self._at, self._cpu = now, cpu


@contextlib.contextmanager
def child(command: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (stdout and stderr to `log_path`), stopped by SIGTERM, then SIGKILL."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def tail(path: Path) -> str:
    """The end of a log file."""
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-2000:]
    return ""


def start_mosquitto(folder: Path, port: int, max_queued: int | None) -> list[str]:
    """The command line of a Mosquitto on `port` (config written into `folder`)."""
    assert MOSQUITTO is not None
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {HOST}\n"
        # As root it would switch to `mosquitto`, who cannot read our folder.
        f"user {getpass.getuser()}\n"
        "allow_anonymous true\n"
        "max_connections -1\n"
        "persistence false\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
        + (f"max_queued_messages {max_queued}\n" if max_queued is not None else "")
    )
    return [MOSQUITTO, "-c", str(conf)]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log_path: Path, what: str) -> None:
    """Until `port` takes connections (RuntimeError with the log if `proc` dies first)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{tail(log_path)}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} does not listen on {port}:\n{tail(log_path)}")


def create_token(hub_dir: Path) -> tuple[str | None, str]:
    """A viewer token from `tribune hub token create` (None when the command is not there)."""
    command = [sys.executable, "-m", "tribune", "hub", "token", "create", "fleet-bench"]
    command += ["--role", "viewer", "--data-dir", str(hub_dir)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"tribune hub token create: {exc}"
    lines = [row.strip() for row in done.stdout.splitlines() if row.strip()]
    if done.returncode == 0 and lines:
        return lines[-1], "created with tribune hub token create --role viewer"
    said = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"tribune hub token create: exit {done.returncode}: {said[:200]}"


# --- the room processes, seen from here -----------------------------------------------------------


class RoomProcess:
    """One `--serve-rooms` process: its rooms, requests by id, and its announcements."""

    def __init__(self, proc: asyncio.subprocess.Process, rooms: list[str], log_path: Path) -> None:
        self.proc = proc
        self.rooms = rooms
        self.log_path = log_path
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._reader = asyncio.create_task(self._read())

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            future = self._pending.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
            elif "event" in message:
                await self.events.put(message)
        gone = RuntimeError(f"room process exited:\n{tail(self.log_path)}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(gone)
        await self.events.put({"event": "exited"})

    def send(self, message: dict[str, Any]) -> None:
        """Write one line to the process."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send an op and wait for its answer (RuntimeError when it failed)."""
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = future
        self.send({**message, "id": self._next})
        reply = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        if "error" in reply:
            raise RuntimeError(f"room process: {reply['error']}")
        return reply

    async def event(self, timeout: float) -> dict[str, Any]:
        """The next announcement (`ready`, `failed`, `stopped`, `exited`)."""
        return await asyncio.wait_for(self.events.get(), timeout)

    async def stop(self) -> None:
        """Close stdin (the rooms stop and say offline), wait, then kill if need be."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


# --- measurements -------------------------------------------------------------------------------


@dataclass
class Options:
    """What to run."""

    rooms: int
    samples: int
    workers: int
    rate: float
    idle_seconds: float
    state_min_interval: float
    burst: bool
    burst_rooms: int
    burst_poll_seconds: float
    poll: bool
    max_queued_messages: int | None


@dataclass
class Hub:
    """The hub's API client, counting requests and timing them by kind."""

    client: httpx.AsyncClient
    requests: int = 0
    durations: dict[str, list[int]] = field(default_factory=dict)

    async def get(self, path: str, kind: str = "other") -> Any:
        """GET a JSON document (None on 404)."""
        self.requests += 1
        started = time.monotonic_ns()
        response = await self.client.get(API + path)
        self.durations.setdefault(kind, []).append(time.monotonic_ns() - started)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        return response.json()


@dataclass
class SampleRun:
    """The single-change samples."""

    latencies_ns: list[int] = field(default_factory=list)
    to_broker_ns: list[int] = field(default_factory=list)
    broker_to_api_ns: list[int] = field(default_factory=list)
    timeouts: int = 0
    first_poll_hits: int = 0
    errors: list[str] = field(default_factory=list)


class Fleet:
    """The rooms, whose process runs each, and which source each shows."""

    def __init__(self, processes: list[RoomProcess], interval: float) -> None:
        self.processes = processes
        self.order = sorted(room for proc in processes for room in proc.rooms)
        self.owner = {room: proc for proc in processes for room in proc.rooms}
        self.source: dict[str, str | None] = dict.fromkeys(self.owner)
        self.quiet_from: dict[str, float] = dict.fromkeys(self.owner, 0.0)
        self.cooldown = 2 * interval + 0.2

    def next_source(self, room: str) -> str:
        """The other source than the one the room shows."""
        return SOURCES[1] if self.source[room] == SOURCES[0] else SOURCES[0]


async def wait_startup(
    hub: Hub, fleet: Fleet, spawned: float, timeout: float
) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    """Seconds from `spawned` until the rooms were built, all online and all with a state;
    what each room process said when its rooms were up."""
    expected = set(fleet.owner)
    marks: dict[str, float | None] = {
        "rooms_started_s": None,
        "all_online_s": None,
        "all_with_state_s": None,
    }
    ready = [asyncio.create_task(proc.event(timeout)) for proc in fleet.processes]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if marks["rooms_started_s"] is None and all(task.done() for task in ready):
                for task in ready:
                    said = task.result()
                    if said.get("event") != "ready":
                        raise RuntimeError(f"a room process did not start: {said}")
                marks["rooms_started_s"] = round(time.monotonic() - spawned, 3)
            rows = (await hub.get("/rooms", "list"))["rooms"]
            now = time.monotonic()
            online = {r["id"] for r in rows if r["status"] == "online"}
            stated = {r["id"] for r in rows if r["revision"] is not None}
            if marks["all_online_s"] is None and expected <= online:
                marks["all_online_s"] = round(now - spawned, 3)
            if marks["all_with_state_s"] is None and expected <= stated:
                marks["all_with_state_s"] = round(now - spawned, 3)
            if all(value is not None for value in marks.values()):
                return marks, [task.result() for task in ready]
            await asyncio.sleep(STARTUP_POLL_SECONDS)
    finally:
        for task in ready:
            task.cancel()
    raise RuntimeError(f"the fleet did not come up in {timeout:.0f} s: {marks}")


class StateWatch:
    """A subscriber to every room's `state`: when each revision went through the broker."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[tuple[int, int]]] = {}
        self.subscribed = asyncio.Event()

    async def run(self, port: int) -> None:
        """Collect (revision, arrival) per room until cancelled."""
        async with aiomqtt.Client(
            HOST, port, identifier="tribune-fleet-bench-watch", protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            await client.subscribe("tribune/v1/+/+/state", qos=1)
            self.subscribed.set()
            async for message in client.messages:
                now = time.monotonic_ns()
                parts = str(message.topic).split("/")
                raw = message.payload
                try:
                    revision = int(
                        json.loads(raw if isinstance(raw, bytes) else str(raw))["revision"]
                    )
                except (ValueError, TypeError, KeyError):
                    continue
                self.arrivals.setdefault(f"{parts[2]}/{parts[3]}", []).append((revision, now))

    def passed(self, room: str, above: int) -> int | None:
        """When the first state of `room` with a revision above `above` went through."""
        return next((at for rev, at in self.arrivals.get(room, []) if rev > above), None)


async def one_sample(
    hub: Hub, fleet: Fleet, watch: StateWatch, room: str, interval: float, run: SampleRun
) -> None:
    """Change one room's source; poll its hub page until the change shows."""
    target = fleet.next_source(room)
    try:
        reply = await fleet.owner[room].request({"op": "change", "room": room, "source": target})
    except Exception as exc:
        run.errors.append(f"{room}: {exc}")
        fleet.quiet_from[room] = time.monotonic() + fleet.cooldown
        return
    fleet.source[room] = target
    started, before = int(reply["t0_ns"]), int(reply["revision_before"])
    first_poll = started / 1e9 + FIRST_POLL_SECONDS  # a lone change goes out at once
    deadline = started + int((interval + SAMPLE_TIMEOUT) * 1e9)
    await asyncio.sleep(max(0.0, first_poll - time.monotonic()))
    polls = 0
    while True:
        found = await hub.get(f"/rooms/{room}", "room")
        seen = time.monotonic_ns()
        polls += 1
        snapshot = (found or {}).get("snapshot") or {}
        revision = (found or {}).get("revision")
        if isinstance(revision, int) and revision > before and snapshot.get("source") == target:
            run.latencies_ns.append(seen - started)
            run.first_poll_hits += polls == 1
            passed = watch.passed(room, before)
            if passed is not None:
                run.to_broker_ns.append(passed - started)
                run.broker_to_api_ns.append(seen - passed)
            break
        if seen > deadline:
            run.timeouts += 1
            break
        await asyncio.sleep(SAMPLE_POLL_SECONDS)
    fleet.quiet_from[room] = time.monotonic() + fleet.cooldown


async def measure_samples(hub: Hub, fleet: Fleet, watch: StateWatch, options: Options) -> SampleRun:
    """`options.samples` single changes at `options.rate` per second, on quiet rooms only."""
    run = SampleRun()
    order = list(fleet.owner)
    random.Random(SEED).shuffle(order)
    busy: set[str] = set()
    tasks: set[asyncio.Task[None]] = set()
    cursor = 0
    for _ in range(options.samples):
        while True:
            now = time.monotonic()
            pick = None
            for step in range(len(order)):
                room = order[(cursor + step) % len(order)]
                if room not in busy and fleet.quiet_from[room] <= now:
                    pick, cursor = room, (cursor + step + 1) % len(order)
                    break
            if pick is not None:
                break
            await asyncio.sleep(0.02)
        busy.add(pick)
        task = asyncio.create_task(
            one_sample(hub, fleet, watch, pick, options.state_min_interval, run), name=pick
        )
        tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            tasks.discard(done)
            busy.discard(done.get_name())

        task.add_done_callback(finished)
        await asyncio.sleep(1 / options.rate)
    await asyncio.gather(*list(tasks))
    return run


async def fire_burst(
    fleet: Fleet, targets: dict[str, str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Every room in `targets` changes source at once: when each started, its revision before."""
    per_process: dict[int, list[list[str]]] = {}
    for room, source in targets.items():
        per_process.setdefault(id(fleet.owner[room]), []).append([room, source])
    replies = await asyncio.gather(
        *(
            proc.request({"op": "burst", "changes": per_process[id(proc)]})
            for proc in fleet.processes
            if id(proc) in per_process
        )
    )
    fleet.source.update(targets)
    started: dict[str, int] = {}
    before: dict[str, int] = {}
    for reply in replies:
        for room, result in reply["results"].items():
            started[room], before[room] = int(result["t0_ns"]), int(result["revision_before"])
    return started, before


async def seen_in_list(
    hub: Hub, before: dict[str, int], first: int, poll_seconds: float
) -> tuple[dict[str, int], int]:
    """When `GET /rooms` first showed each room above its revision `before`; the polls made."""
    waiting = set(before)
    seen: dict[str, int] = {}
    polls = 0
    while waiting and time.monotonic_ns() - first < BURST_TIMEOUT * 1e9:
        rows = (await hub.get("/rooms", "list"))["rooms"]
        now = time.monotonic_ns()
        polls += 1
        for row in rows:
            room, revision = row["id"], row["revision"]
            if room in waiting and isinstance(revision, int) and revision > before[room]:
                seen[room] = now
                waiting.discard(room)
        if waiting:
            await asyncio.sleep(poll_seconds)
    return seen, polls


async def check_pages(hub: Hub, fleet: Fleet, targets: dict[str, str]) -> tuple[int, int]:
    """Rooms whose hub page does not show the new source; events the hub lacks (at least).

    An event is missing when its `seq` is absent from the latest 50 events on the room's page
    although the room numbered it (its `sync.event_seq`, asked of the room's process).
    """
    last: dict[str, int] = {}
    for reply in await asyncio.gather(
        *(proc.request({"op": "event_seqs"}) for proc in fleet.processes)
    ):
        last.update({room: int(seq) for room, seq in reply["seqs"].items()})
    gate = asyncio.Semaphore(8)

    async def check(room: str) -> tuple[bool, int]:
        async with gate:
            found = await hub.get(f"/rooms/{room}", "room-check") or {}
        shows = (found.get("snapshot") or {}).get("source") == targets[room]
        seqs = {e["seq"] for e in found.get("events") or [] if isinstance(e.get("seq"), int)}
        low = min(seqs, default=max(1, last[room] - 49))
        return shows, len(set(range(low, last[room] + 1)) - seqs)

    checked = await asyncio.gather(*(check(room) for room in targets))
    return sum(not shows for shows, _ in checked), sum(missing for _, missing in checked)


async def measure_burst(
    hub: Hub, fleet: Fleet, watch: StateWatch, count: int, poll_seconds: float
) -> dict[str, Any]:
    """`count` rooms change at once; when each shows in `GET /rooms`; then their pages checked."""
    rooms = fleet.order[:count]
    targets = {room: fleet.next_source(room) for room in rooms}
    started, before = await fire_burst(fleet, targets)
    first = min(started.values())
    seen, polls = await seen_in_list(hub, before, first, poll_seconds)
    passed = {room: watch.passed(room, before[room]) for room in rooms}
    through = {room: at for room, at in passed.items() if at is not None}
    for room in rooms:
        fleet.quiet_from[room] = time.monotonic() + fleet.cooldown
    await quiet(fleet)  # every outbox drained
    mismatches, missing = await check_pages(hub, fleet, targets)
    return {
        "rooms": len(rooms),
        "change_to_hub_ms": summarize([seen[r] - started[r] for r in seen]),
        "change_to_broker_ms": summarize([through[r] - started[r] for r in seen if r in through]),
        "broker_to_hub_api_ms": summarize([seen[r] - through[r] for r in seen if r in through]),
        "all_through_broker_s": round((max(through.values()) - first) / 1e9, 3)
        if through
        else None,
        "all_visible_s": round((max(seen.values()) - first) / 1e9, 3) if seen else None,
        "changes_spread_ms": round((max(started.values()) - first) / 1e6, 3),
        "timed_out": len(rooms) - len(seen),
        "timed_out_after_the_broker": sum(r in through for r in rooms if r not in seen),
        "source_mismatch": mismatches,
        "events_missing_in_hub": missing,
        "api_poll_interval_ms": poll_seconds * 1000,
        "api_polls": polls,
    }


async def quiet(fleet: Fleet) -> None:
    """Until no room changed in the last cooldown."""
    await asyncio.sleep(max(0.0, max(fleet.quiet_from.values()) - time.monotonic()))


def broker_drops(log_path: Path) -> int:
    """Lines where Mosquitto says it dropped messages for a client."""
    with contextlib.suppress(OSError):
        text = log_path.read_text(errors="replace")
        return sum("dropped" in row.lower() for row in text.splitlines())
    return 0


@dataclass
class Phases:
    """What the measuring phases found."""

    startup: dict[str, float | None]
    readies: list[dict[str, Any]]
    samples: SampleRun
    sample_seconds: float
    sample_requests: int
    burst: dict[str, Any] | None
    list_rooms_quiet_ns: list[int]


async def measure_phases(
    hub: Hub, fleet: Fleet, watch: StateWatch, cpu: CpuWindows, spawned: float, options: Options
) -> Phases:
    """Start-up, idle, single changes, the burst; CPU marked per window."""
    startup, readies = await wait_startup(hub, fleet, spawned, 60 + options.rooms * 0.2)
    cpu.mark("startup")
    await asyncio.sleep(max(3.0, 2 * options.state_min_interval + 1))  # first polls settle
    cpu.mark(None)
    await asyncio.sleep(options.idle_seconds)
    cpu.mark("idle")
    requests_before = hub.requests
    sampled_from = time.monotonic()
    samples = await measure_samples(hub, fleet, watch, options)
    sample_seconds = time.monotonic() - sampled_from
    sample_requests = hub.requests - requests_before
    cpu.mark("samples")
    burst = None
    if options.burst:
        await quiet(fleet)
        cpu.mark(None)
        burst = await measure_burst(
            hub, fleet, watch, options.burst_rooms, options.burst_poll_seconds
        )
        cpu.mark("burst")
    await quiet(fleet)
    list_quiet = []
    for _ in range(LIST_ROOMS_QUIET):
        started = time.monotonic_ns()
        await hub.get("/rooms", "list-quiet")
        list_quiet.append(time.monotonic_ns() - started)
    return Phases(startup, readies, samples, sample_seconds, sample_requests, burst, list_quiet)


async def run_fleet(options: Options, scratch: Path, room_data: Path) -> dict[str, Any]:
    """Start everything, measure, stop everything; the report."""
    limits = raise_nofile(options.rooms * FDS_PER_ROOM + 4096)
    interval = options.state_min_interval
    broker_port, hub_port = free_port(), free_port()
    broker_url = f"mqtt://{HOST}:{broker_port}"
    hub_dir = scratch / "hub"
    hub_dir.mkdir()
    token, auth_detail = await asyncio.to_thread(create_token, hub_dir)
    headers = {"Authorization": f"Bearer {token or 'no-token-command-yet'}"}
    python = [sys.executable]
    with contextlib.ExitStack() as stack:
        broker_log = scratch / "mosquitto.log"
        broker = stack.enter_context(
            child(start_mosquitto(scratch, broker_port, options.max_queued_messages), broker_log)
        )
        wait_for_port(broker_port, broker, broker_log, "mosquitto")
        hub_log = scratch / "hub.log"
        hub_proc = stack.enter_context(
            child(
                [*python, "-m", "tribune", "hub", "--broker", broker_url,
                 "--port", str(hub_port), "--data-dir", str(hub_dir)],
                hub_log,
            )
        )  # fmt: skip
        await asyncio.to_thread(wait_for_port, hub_port, hub_proc, hub_log, "the hub")
        watch = StateWatch()
        watching = asyncio.create_task(watch.run(broker_port))
        async with httpx.AsyncClient(
            base_url=f"http://{HOST}:{hub_port}", headers=headers, timeout=REQUEST_TIMEOUT
        ) as client:
            hub = Hub(client)
            await hub.get("/rooms")  # the API answers (and takes the token)
            await asyncio.wait_for(watch.subscribed.wait(), 10)
            names = room_ids(options.rooms)
            spawned = time.monotonic()
            processes: list[RoomProcess] = []
            try:
                for index in range(options.workers):
                    processes.append(
                        await spawn_rooms(
                            names[index :: options.workers],
                            scratch / f"rooms-{index}.log",
                            {
                                "data_dir": str(room_data),
                                "broker": broker_url,
                                "state_min_interval": interval,
                                "poll": options.poll,
                            },
                        )
                    )
                pids = {"hub": [hub_proc.pid], "broker": [broker.pid], "bench": [os.getpid()]}
                cpu = CpuWindows({**pids, "rooms": [proc.pid for proc in processes]})
                fleet = Fleet(processes, interval)
                found = await measure_phases(hub, fleet, watch, cpu, spawned, options)
                hub_status = proc_status(hub_proc.pid)
                broker_status = proc_status(broker.pid)
                room_status = [proc_status(proc.pid) for proc in processes]
                for name, other in (("the hub", hub_proc), ("mosquitto", broker)):
                    if other.poll() is not None:
                        raise RuntimeError(f"{name} exited during the run")
            finally:
                await asyncio.gather(*(proc.stop() for proc in processes), return_exceptions=True)
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await watching
    samples = found.samples
    stats = summarize(samples.latencies_ns)
    within = (
        stats["n"] > 0
        and float(stats["p99"]) < BUDGET["change_to_hub_p99_ms"]
        and samples.timeouts == 0
    )
    rss_total = sum(float(s.get("rss_mb", 0.0)) for s in room_status)
    rss_base = sum(float(said.get("base_rss_mb", 0.0)) for said in found.readies)
    return {
        "rooms": options.rooms,
        "room_ids": f"{room_ids(1)[0]} .. {room_ids(options.rooms)[-1]}",
        "room_processes": options.workers,
        "state_min_interval_s": interval,
        "device_polling": options.poll,
        "startup": found.startup,
        "change_to_hub_ms": stats,
        "beyond_state_interval_ms": summarize(
            [max(0, ns - int(interval * 1e9)) for ns in samples.latencies_ns]
        ),
        "change_to_broker_ms": summarize(samples.to_broker_ns),
        "broker_to_hub_api_ms": summarize(samples.broker_to_api_ns),
        "samples_timed_out": samples.timeouts,
        "sample_errors": samples.errors[:5],
        "visible_at_first_poll": samples.first_poll_hits,
        "api_poll_interval_ms": SAMPLE_POLL_SECONDS * 1000,
        "change_rate_per_s": round(len(samples.latencies_ns) / found.sample_seconds, 2),
        "api_requests": {
            "samples": found.sample_requests,
            "per_s": round(found.sample_requests / found.sample_seconds, 1),
            "room_ms": summarize(hub.durations.get("room", [])),
            "list_ms": summarize(hub.durations.get("list", [])),
            "list_quiet_ms": summarize(found.list_rooms_quiet_ns),
        },
        "burst": found.burst,
        "cpu_windows_s": cpu.seconds,
        "hub": {"cpu_percent_of_one_core": cpu.windows["hub"], **hub_status},
        "broker": {
            "cpu_percent_of_one_core": cpu.windows["broker"],
            **broker_status,
            "max_queued_messages": options.max_queued_messages or "default (1000)",
            "dropped_lines_in_log": broker_drops(broker_log),
        },
        "room_processes_detail": {
            "cpu_percent_of_one_core": cpu.windows["rooms"],
            "rss_mb_total": round(rss_total, 1),
            "rss_mb_before_rooms": round(rss_base, 1),
            "rss_kb_per_room": round((rss_total - rss_base) * 1024 / options.rooms, 1),
            "threads_total": sum(int(s.get("threads", 0)) for s in room_status),
            "fds_total": sum(int(s.get("fds", 0)) for s in room_status),
        },
        "box": {
            "busy_percent_of_one_core": cpu.windows["box"],
            "others_percent_of_one_core": cpu.windows["others"],
            "bench_driver_percent_of_one_core": cpu.windows["bench"],
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "limits": {"nofile": limits},
        "auth": {"token_created": token is not None, "detail": auth_detail},
        "room_data_filesystem": filesystem_of(room_data),
        "hub_data_filesystem": filesystem_of(hub_dir),
        "budget": BUDGET,
        "within_budget": within,
        "budget_scale_reached": options.rooms >= BUDGET["rooms"],
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": {"cpus": os.cpu_count(), "system": platform.platform()},
    }


async def spawn_rooms(rooms: list[str], log_path: Path, spec: dict[str, Any]) -> RoomProcess:
    """Start a `--serve-rooms` process for `rooms` and hand it its spec."""
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), "--serve-rooms",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=log, limit=2**22,
        )  # fmt: skip
    worker = RoomProcess(proc, rooms, log_path)
    worker.send({**spec, "rooms": rooms})
    return worker


def run(options: Options, logs: Path | None = None) -> dict[str, Any]:
    """The report; every file is in temporary folders, removed afterwards (logs copied first)."""
    if MOSQUITTO is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    shm = Path("/dev/shm")
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tribune-fleet-")))
        room_base = shm if shm.is_dir() and os.access(shm, os.W_OK) else scratch
        room_data = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="tribune-fleet-rooms-", dir=room_base)
            )
        )
        try:
            return asyncio.run(run_fleet(options, scratch, room_data))
        finally:
            if logs is not None:
                logs.mkdir(parents=True, exist_ok=True)
                for log in scratch.glob("*.log"):
                    shutil.copy(log, logs / log.name)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds, so every child is stopped


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"want a positive number, got {text}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    """Parse flags; print the report as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rooms", type=_positive(int), default=DEFAULT_ROOMS, metavar="N")
    parser.add_argument("--samples", type=_positive(int), default=DEFAULT_SAMPLES, metavar="S")
    parser.add_argument("--workers", type=_positive(int), default=DEFAULT_WORKERS, metavar="W")
    parser.add_argument("--rate", type=_positive(float), default=DEFAULT_RATE, metavar="PER_S")
    parser.add_argument(
        "--idle-seconds", type=_positive(float), default=DEFAULT_IDLE_SECONDS, metavar="S"
    )
    parser.add_argument(
        "--state-min-interval",
        type=float,
        default=DEFAULT_STATE_MIN_INTERVAL,
        metavar="SECONDS",
        help="the rooms' [sync] state_min_interval (default: the production 1.0; min 0.05)",
    )
    parser.add_argument("--no-burst", dest="burst", action="store_false")
    parser.add_argument("--burst-rooms", type=_positive(int), metavar="N", help="default: all")
    parser.add_argument(
        "--burst-poll-interval",
        type=_positive(float),
        default=BURST_POLL_SECONDS,
        metavar="SECONDS",
        help=f"pause between GET /rooms in the burst (default {BURST_POLL_SECONDS})",
    )
    parser.add_argument(
        "--no-poll", dest="poll", action="store_false", help="devices not polled (room side)"
    )
    parser.add_argument(
        "--max-queued-messages",
        type=_positive(int),
        metavar="N",
        default=200_000,
        help="the broker's max_queued_messages (default 200000, as deploy/mosquitto/tribune.conf;"
        " Mosquitto's own default, 1000, drops messages for the hub in a 1000-room burst)",
    )
    parser.add_argument("--json-out", type=Path, metavar="FILE", help="also write the report")
    parser.add_argument(
        "--logs", type=Path, metavar="DIR", help="keep the broker's, hub's and rooms' logs here"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rooms, 6 samples, 1 process, 1 s idle, state_min_interval 0.2 (CI smoke)",
    )
    parser.add_argument("--serve-rooms", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_rooms:
        logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(message)s")
        asyncio.run(serve_rooms())
        return 0
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if not 0.05 <= args.state_min_interval <= 600:
        parser.error("--state-min-interval: 0.05 to 600 (the [sync] section's bounds)")
    options = Options(
        rooms=args.rooms,
        samples=args.samples,
        workers=min(args.workers, args.rooms),
        rate=args.rate,
        idle_seconds=args.idle_seconds,
        state_min_interval=args.state_min_interval,
        burst=args.burst,
        burst_rooms=min(args.burst_rooms or args.rooms, args.rooms),
        burst_poll_seconds=args.burst_poll_interval,
        poll=args.poll,
        max_queued_messages=args.max_queued_messages,
    )
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    report = run(options, args.logs)
    text = json.dumps(report)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
