"""Soak under faults: a room with every simulator, synced to a real hub; prints JSON.

    .venv/bin/python bench/soak.py --minutes N --seed S [--json-out FILE] [--logs DIR]
                                   [--fault-interval S] [--checkpoint-minutes M]
                                   [--settle-timeout S] [--warmup S] [--kill-until F]
                                   [--tracemalloc DIR]

The room (`bench/soak_room.py`): eleven devices, each on its simulator (nine on line-checked
ptys, PJLink and Sony on TCP, at `tribune demo`'s speed), served by `python -m tribune serve` as
a child process with `[sync]` to a Mosquitto started here on a free loopback port; the hub
(`HubStore`, `HubSubscriber`, its API) runs in this process. For N minutes, with
`random.Random` streams seeded from S:

- faults, one every `--fault-interval` seconds on average, their kinds dealt from a shuffled
  deck (so a short run still gets every kind): `unplug` (a pty vanishes for 0.5-8 s and comes
  back at a new path; the symlink follows), `network_drop` (a TCP device stops
  listening and drops its client for 0.5-8 s), `garbage` (a burst of random bytes on the line,
  or the next 1-3 replies garbled), `slow` (every reply of a device late by 0.3-2.5 s, for
  3-15 s: past the reply timeout, so late replies arrive while the next request waits),
  `drop` (the next 1-3 replies never come), `busy` (the device answers busy for 2-12 s),
  `broker_restart` (SIGTERM to Mosquitto, 1-10 s down) and `kill9` (SIGKILL to the service,
  restarted 0.3-3 s later; only in the first `--kill-until` of the faults, by default while the
  rest of the run is at least 70 % of it and 9 minutes — the first 18 minutes of an hour, the
  first minute of ten — so the last life of the service is long enough for its RSS slope, past
  its warm-up, to mean something);
- intents as an instructor: scenes, sources, the switcher's volume and mute through the local
  API — loopback without a token as the panel (`X-Tribune-Origin: panel`), one in five with the
  api token — every 2 s on average; and as the hub: scenes and volume patches through the hub's
  API, every 6 s on average, each followed until its result.

Every `--checkpoint-minutes` the faults pause: everything healed, the room left until every
device has been online and the room converged for 8 s on end (a request timing out must not
pass for quiet), then the service's open file descriptors and asyncio tasks
(`tribune_asyncio_tasks` in `/api/v1/metrics`) are counted — the least of three readings, so a
poll's short-lived connection does not count. The first such count, before any fault, is the
baseline; every process of the service on the same config has the same count when quiet.

At the end, healed and quiet again (`--settle-timeout`), the invariants:

- `intents_missing_from_audit`: acknowledged intents (202 from the API, `done` from the hub)
  whose audit id is not in the room's audit log with the right action and origin;
- `events_lost`: seqs 1..N (N: the room's `sync.event_seq`) neither in the hub nor still
  waiting in the room's outbox (`events_pending`, 0 once settled), less those an
  `outbox.dropped` alert accounts for; `events_duplicated`: one audit entry's word (id and
  result) under two seqs (the hub keys events by seq, so a seq itself cannot be kept twice);
  `seq_conflicts`: a seq that reached the hub's store twice with different content (the hub
  keeps the first, so the other is lost), `events_redelivered` the repeats of the same;
  `audit_missing_in_hub`: entries of the room's audit log whose present result (a later `done`
  or `converged` too) no `audit`/`help` event brought to the hub;
- `converged`: every device online, the room converged, its desired state the last one asked
  for (per capability; an intent whose outcome is unknown — no answer before a kill, a hub
  command without a result — may be the last one if nothing acknowledged came after it), and
  the simulators themselves in that state (power, the switcher's ties, volume and mute);
- `unhandled_errors`: tracebacks in the service's log (every life of it), one per exception,
  and asyncio's reports of an exception nobody handled; `error_records` counts its other ERROR
  and CRITICAL records (paho's "connection reset" when the broker goes, say), with samples;
  `harness_errors` the same for this process (the hub, the simulators);
- `rss_slope_kb_per_min`: least-squares slope of VmRSS sampled every 2 s, pooled over the
  service's lives (each life its own intercept), with its standard error (Newey-West: RSS moves
  in pages and steps, so neighbouring samples are not independent). A life's warm-up is
  left out: its first `--warmup` seconds, and the time until its event bus has published twice
  `REPLAY_EVENTS` (2000) events — the bus keeps that many for WebSocket clients to resume from
  (each a device snapshot), so memory grows by design until the buffer is full, and what it
  holds settles only once every slot has been replaced: the snapshots of a room just started
  are smaller than those of a room that has been through sources, routes and faults (about
  seven minutes at this run's pace; a 10-minute run's longest life is just past it);
  `rss_settling`: the longest life past its warm-up — its minutes, the RSS it gained (median of
  the last minute less the first) and how much of that was anonymous memory (`RssAnon`), and
  the slope of each third: a leak keeps its pace, memory settling slows down;
- `fd_leak` and `task_leak`: the final quiet count less the baseline; `fd_leak_kinds` says of
  which kind (socket, pipe, pty, which file) the difference is.

Exit code 0 when the report was written, whatever it says; 1 when the run itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import httpx
from soak_checks import (
    Intent,
    Key,
    Sample,
    check_audit,
    check_convergence,
    check_events,
    keep_sample,
    lives_summary,
    read_hub_events,
    read_room_db,
    rss_curve,
    rss_settling,
    rss_slope,
    scan_log,
    scene_effects,
    source_effects,
)
from soak_room import (
    DEVICES,
    ROOM_ID,
    SOURCES,
    Broker,
    Hub,
    ServiceProcess,
    Simulators,
    room_toml,
    running_hub,
)

from tribune.events import REPLAY_EVENTS

FAULT_DECK = {
    "unplug": 4,
    "garbage": 3,
    "slow": 2,
    "drop": 2,
    "busy": 2,
    "network_drop": 1,
    "broker_restart": 1,
    "kill9": 1,
}
INSTRUCTOR_EVERY = 2.0
HUB_EVERY = 6.0
HUB_TTL = 15.0
HUB_EXPIRY_MARGIN = 5.0  # no result by deadline + this: the hub says `expired` (default 30 s)
SAMPLE_EVERY = 2.0
# The last life must outlast its warm-up (4000 events, about 8 minutes at this pace) by a minute.
LAST_LIFE = 540.0
QUIET_HOLD = 8.0  # s: longer than a reply timeout, its retry and the pause between
QUIET_TIMEOUT = 90.0

log = logging.getLogger("soak")


# --- the harness --------------------------------------------------------------------------------


@dataclass
class Quiet:
    """A count taken with every device online, the room converged and no fault active."""

    at_s: float
    label: str
    pid: int
    fds: int
    tasks: int
    rss_kb: int
    fd_kinds: dict[str, int] = field(default_factory=dict)  # socket, pipe, pty, file...


@dataclass
class Settings:
    """The run's parameters."""

    minutes: float
    seed: int
    fault_interval: float
    checkpoint_minutes: float
    settle_timeout: float
    warmup: float
    kill_until: float | None  # kill -9 only in this first fraction (None: see `kill_window`)
    tracemalloc: Path | None = None


@dataclass
class Soak:
    """Everything the run holds; `run()` does the work."""

    settings: Settings
    scratch: Path
    sims: Simulators
    broker: Broker
    service: ServiceProcess
    hub: Hub
    http: httpx.AsyncClient
    api_token: str = ""
    t0: float = field(default_factory=time.monotonic)
    intents: list[Intent] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    fault_errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    tasks_seen: list[tuple[float, int]] = field(default_factory=list)
    quiet: list[Quiet] = field(default_factory=list)
    paused: asyncio.Event = field(default_factory=asyncio.Event)  # set: drive and inject
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    heal_now: asyncio.Event = field(default_factory=asyncio.Event)
    pending: set[asyncio.Task[None]] = field(default_factory=set)
    followers: set[asyncio.Task[None]] = field(default_factory=set)
    faulted: set[str] = field(default_factory=set)  # devices with a timed fault on
    log: list[str] = field(default_factory=list)
    broker_down: bool = False
    service_down: bool = False
    baseline: Quiet | None = None  # the quiet count before any fault
    faults_t0: float | None = None  # when the faults began (monotonic)
    # Held while a fault is injected: a checkpoint heals only after it is fully in place.
    inject_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.t0

    # --- the instructor ------------------------------------------------------------------------

    async def instructor(self) -> None:
        """Scenes, sources, volume and mute through the local API, as the panel or a token."""
        rng = random.Random(f"{self.settings.seed}-instructor")
        while not self.stopping.is_set():
            await self._pause(rng.expovariate(1 / INSTRUCTOR_EVERY))
            if self.stopping.is_set():
                return
            request: tuple[str, str, Any]
            with_token = rng.random() < 0.2
            headers = (
                {"Authorization": f"Bearer {self.api_token}"}
                if with_token
                else {"X-Tribune-Origin": "panel"}
            )
            who = "api" if with_token else "panel"
            roll = rng.random()
            if roll < 0.35:
                scene = "class-start" if rng.random() < 0.6 else "class-end"
                intent = Intent("scene", who, "scene.activate", scene_effects(scene), 0.0)
                request = ("POST", f"/api/v1/scenes/{scene}/activate", None)
            elif roll < 0.65:
                source = rng.choice(SOURCES)
                intent = Intent("source", who, "source.select", source_effects(source), 0.0)
                request = ("POST", f"/api/v1/sources/{source}/select", None)
            elif roll < 0.9:
                level = rng.randint(0, 100)
                effects: dict[Key, str] = {("switcher", "volume"): str(level)}
                intent = Intent("volume", who, "desired.patch", effects, 0.0)
                request = ("PATCH", "/api/v1/room/desired", {"switcher": {"volume": level}})
            else:
                mute = rng.choice(("on", "off"))
                intent = Intent("mute", who, "desired.patch", {("switcher", "mute"): mute}, 0.0)
                request = ("PATCH", "/api/v1/room/desired", {"switcher": {"mute": mute}})
            method, path, body = request
            await self._send(intent, method, path, body, headers)

    async def _send(
        self, intent: Intent, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> None:
        intent.started = time.monotonic()
        self.intents.append(intent)
        try:
            answer = await self.http.request(
                method, self.service.base + path, json=body, headers=headers, timeout=10.0
            )
        except httpx.HTTPError as exc:
            intent.ended = time.monotonic()
            intent.detail = type(exc).__name__
            self.trace(f"{intent.who} {method} {path} {body or ''} -> {intent.detail}")
            return
        intent.ended = time.monotonic()
        self.trace(f"{intent.who} {method} {path} {body or ''} -> {answer.status_code}")
        if answer.status_code == 202:
            intent.acked = True
            intent.applied = True
            intent.audit_id = int(answer.json()["audit_id"])
        else:
            # A refusal (4xx) changes nothing; a 5xx is a bug whose outcome is not known.
            intent.applied = None if answer.status_code >= 500 else False
            intent.detail = f"{answer.status_code} {answer.text[:200]}"

    # --- the hub ----------------------------------------------------------------------------

    async def operator(self) -> None:
        """Scenes and volume patches through the hub's API, each followed to its result."""
        rng = random.Random(f"{self.settings.seed}-hub")
        while not self.stopping.is_set():
            await self._pause(rng.expovariate(1 / HUB_EVERY))
            if self.stopping.is_set():
                return
            roll = rng.random()
            if roll < 0.5:
                scene = "class-start" if rng.random() < 0.6 else "class-end"
                intent = Intent("hub-scene", "hub", "scene.activate", scene_effects(scene), 0.0)
                command = {"action": "scene.activate", "args": {"scene": scene}}
            else:
                device = rng.choice(("matrix", "codec"))
                level = rng.randint(0, 100)
                effects: dict[Key, str] = {(device, "volume"): str(level)}
                intent = Intent("hub-patch", "hub", "desired.patch", effects, 0.0)
                command = {
                    "action": "desired.patch",
                    "args": {"desired": {device: {"volume": level}}},
                }
            intent.started = time.monotonic()
            self.intents.append(intent)
            answer = await self.hub.http.post(
                f"/api/v1/rooms/{ROOM_ID}/commands", json={**command, "ttl_s": HUB_TTL}
            )
            if answer.status_code != 202:
                intent.applied = False
                intent.ended = time.monotonic()
                intent.detail = f"{answer.status_code} {answer.text[:200]}"
                continue
            self.trace(f"hub {command} -> {answer.json()['id']}")
            task = asyncio.create_task(self._follow(intent, str(answer.json()["id"])))
            self.followers.add(task)
            task.add_done_callback(self.followers.discard)

    async def _follow(self, intent: Intent, command_id: str) -> None:
        """Poll the hub until the room's result (or the hub's own `expired`)."""
        await self._follow_to_the_end(intent, command_id)
        self.trace(f"hub command {command_id}: {intent.detail or 'done'}")

    async def _follow_to_the_end(self, intent: Intent, command_id: str) -> None:
        deadline = intent.started + HUB_TTL
        give_up = deadline + HUB_EXPIRY_MARGIN + 10
        while time.monotonic() < give_up:
            await asyncio.sleep(0.25)
            body = (await self.hub.http.get(f"/api/v1/commands/{command_id}")).json()
            row = body["rooms"][ROOM_ID]
            status, result = row["status"], row["result"] or {}
            if status == "done":
                intent.acked = intent.applied = True
                intent.ended = time.monotonic()
                intent.audit_id = int(result["detail"]["audit_id"])
                return
            if status == "failed":
                # Refused by the room, or "interrupted by a restart" (it may have run).
                intent.ended = time.monotonic()
                intent.detail = json.dumps(result.get("detail"))[:200]
                return
            if status == "expired":
                intent.ended = time.monotonic()  # never run after its deadline; maybe before
                intent.detail = "expired"
                return
        intent.ended = give_up
        intent.detail = "no result"

    # --- faults -----------------------------------------------------------------------------

    async def injector(self) -> None:
        """Deal faults from a shuffled deck, one every `fault_interval` s on average."""
        rng = random.Random(f"{self.settings.seed}-faults")
        deck: list[str] = []
        while not self.stopping.is_set():
            await self._pause(rng.expovariate(1 / self.settings.fault_interval))
            if self.stopping.is_set():
                return
            if not deck:
                deck = [kind for kind, count in FAULT_DECK.items() for _ in range(count)]
                rng.shuffle(deck)
            kind = deck.pop()
            async with self.inject_lock:
                if not self.paused.is_set() or self.stopping.is_set():
                    deck.append(kind)  # a checkpoint or the end came meanwhile: dealt later
                    continue
                try:
                    done = await self._inject(kind, rng)
                except Exception as exc:  # a fault that could not be injected is reported
                    self.fault_errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                    continue
            if done is not None:
                self.faults[kind] += 1
                self.trace(f"fault {kind}: {done}")

    async def _inject(self, kind: str, rng: random.Random) -> str | None:
        """Inject one fault of `kind`; what was done (None: none could be, e.g. all busy)."""
        sims = self.sims.running
        free = [d.name for d in DEVICES if d.name not in self.faulted]
        free_serial = [n for n in self.sims.serial() if n not in self.faulted]
        free_network = [n for n in self.sims.network() if n not in self.faulted]
        everyone = [d.name for d in DEVICES]
        if kind == "unplug" and free_serial:
            name, seconds = rng.choice(free_serial), rng.uniform(0.5, 8)
            sims[name].unplug()
            self._later(name, seconds, lambda: _plug(self.sims, name))
            return f"{name} for {seconds:.1f} s"
        if kind == "network_drop" and free_network:
            name, seconds = rng.choice(free_network), rng.uniform(0.5, 8)
            await sims[name].stop_tcp()
            self._later(name, seconds, sims[name].start_tcp)
            return f"{name} for {seconds:.1f} s"
        if kind == "garbage":
            name = rng.choice(everyone)
            if rng.random() < 0.5:
                burst = rng.randbytes(rng.randint(8, 256))
                sims[name].sim.broadcast(burst)
                return f"{name}: a burst of {len(burst)} bytes"
            sims[name].faults.garbage = rng.randint(1, 3)
            return f"{name}: the next {sims[name].faults.garbage} replies"
        if kind == "drop":
            name = rng.choice(everyone)
            sims[name].faults.drop = rng.randint(1, 3)
            return f"{name}: the next {sims[name].faults.drop} replies"
        if kind == "slow" and free:
            name, seconds = rng.choice(free), rng.uniform(3, 15)
            sims[name].faults.delay = rng.uniform(0.3, 2.5)
            self._later(name, seconds, lambda: _clear(sims[name].faults, "delay"))
            return f"{name}: +{sims[name].faults.delay:.2f} s a reply for {seconds:.1f} s"
        if kind == "busy" and free:
            name, seconds = rng.choice(free), rng.uniform(2, 12)
            sims[name].faults.busy = True
            self._later(name, seconds, lambda: _clear(sims[name].faults, "busy"))
            return f"{name} for {seconds:.1f} s"
        if kind == "broker_restart" and not self.broker_down:
            self.broker_down = True
            seconds = rng.uniform(1, 10)
            await asyncio.to_thread(self.broker.stop)
            self._later(None, seconds, self._broker_up)
            return f"down for {seconds:.1f} s"
        if kind == "kill9" and not self.service_down and self._may_kill():
            self.service_down = True
            seconds = rng.uniform(0.3, 3)
            pid = self.service.pid
            await self.service.kill9()
            self._later(None, seconds, self._service_up)
            return f"pid {pid}, restarted after {seconds:.1f} s"
        return None

    def trace(self, line: str) -> None:
        """One line of the run's own log (`soak.log` with `--logs`)."""
        self.log.append(f"{time.strftime('%H:%M:%S')} {self.now():8.2f} {line}")

    def _may_kill(self) -> bool:
        """Whether the run is still in its kill -9 part (counted from the first fault)."""
        if self.faults_t0 is None:
            return False
        return time.monotonic() - self.faults_t0 < kill_window(self.settings)

    def _later(self, device: str | None, seconds: float, end: Callable[[], Awaitable[Any]]) -> None:
        """End a fault after `seconds` (or at once when healing)."""
        if device is not None:
            self.faulted.add(device)

        async def wait_then_end() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.heal_now.wait(), seconds)
            try:
                await end()
            except Exception as exc:
                self.fault_errors.append(f"ending a fault: {type(exc).__name__}: {exc}")
            finally:
                if device is not None:
                    self.faulted.discard(device)

        task = asyncio.create_task(wait_then_end())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _broker_up(self) -> None:
        await asyncio.to_thread(self.broker.start)
        self.broker_down = False

    async def _service_up(self) -> None:
        await self.service.start(self.http)
        self.service_down = False

    async def heal(self) -> None:
        """End every fault now: devices, broker and service all back."""
        self.trace("heal")
        self.heal_now.set()
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
        self.heal_now.clear()
        await self.sims.heal()
        if not self.broker.running:
            await self._broker_up()
        if self.service.pid is None:
            await self._service_up()

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds` of unpaused time (or until the run stops)."""
        end = time.monotonic() + seconds
        while not self.stopping.is_set():
            await self.paused.wait()
            left = end - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), min(left, 0.5))

    # --- readings ----------------------------------------------------------------------------

    async def sampler(self) -> None:
        """Every 2 s: RSS and fds from /proc, the task count and bus seq from the metrics."""
        while True:
            pid = self.service.pid
            if pid is not None:
                reading = _read_process(pid)
                metrics = await self._metrics()
                if reading is not None and self.service.pid == pid:
                    rss, fds, anon = reading
                    life = time.monotonic() - self.service.started_at
                    bus = metrics.get("tribune_events_seq")
                    self.samples.append(Sample(pid, life, self.now(), rss, fds, bus, anon))
                if "tribune_asyncio_tasks" in metrics:
                    self.tasks_seen.append((self.now(), metrics["tribune_asyncio_tasks"]))
            await asyncio.sleep(SAMPLE_EVERY)

    async def _metrics(self) -> dict[str, int]:
        """The service's gauges this harness reads (none while it does not answer)."""
        try:
            text = (await self.http.get(f"{self.service.base}/api/v1/metrics", timeout=5)).text
        except httpx.HTTPError:
            return {}
        found = re.findall(
            r"^(tribune_asyncio_tasks|tribune_events_seq)\{[^}]*\} (\d+)$", text, re.M
        )
        return {name: int(value) for name, value in found}

    async def _tasks(self) -> int | None:
        return (await self._metrics()).get("tribune_asyncio_tasks")

    async def room(self) -> dict[str, Any] | None:
        """`GET /api/v1/room`, or None while the service does not answer."""
        try:
            answer = await self.http.get(f"{self.service.base}/api/v1/room", timeout=5)
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        body: dict[str, Any] = answer.json()
        return body

    async def wait_quiet(self, timeout: float) -> dict[str, Any] | None:
        """Until every device has been online and the room converged for `QUIET_HOLD` s on end;
        the room then (None: never). One good reading is not enough: a device can look well
        while its request is timing out, and go offline a few seconds later."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while time.monotonic() < deadline:
            room = await self.room()
            if room and room["converged"] and all(d["online"] for d in room["devices"].values()):
                since = since if since is not None else time.monotonic()
                if time.monotonic() - since >= QUIET_HOLD:
                    return room
            else:
                since = None
            await asyncio.sleep(0.5)
        return None

    async def quiet_count(self, label: str) -> Quiet | None:
        """The least of three readings of fds, tasks and RSS, a second apart."""
        readings: list[tuple[int, int, int]] = []
        pid = self.service.pid
        for _ in range(3):
            await asyncio.sleep(1.0)
            # Descriptors first: right after the metrics request its socket may still be open.
            reading = _read_process(pid) if pid is not None else None
            tasks = await self._tasks()
            if tasks is None or reading is None or self.service.pid != pid:
                return None
            readings.append((reading[1], tasks, reading[0]))
        assert pid is not None
        await asyncio.sleep(1.0)  # the kinds, too, with no request of ours in flight
        kinds = _fd_kinds(pid)
        fds, tasks, rss = (min(column) for column in zip(*readings, strict=True))
        found = Quiet(round(self.now(), 1), label, pid, fds, tasks, rss, kinds)
        self.quiet.append(found)
        return found

    async def checkpoint(self, label: str) -> None:
        """Pause the faults and the intents, heal, wait for quiet, count."""
        self.paused.clear()
        async with self.inject_lock:  # a fault being injected is in place before it is healed
            await self.heal()
        await asyncio.gather(*list(self.followers), return_exceptions=True)
        if await self.wait_quiet(QUIET_TIMEOUT) is not None:
            await self.quiet_count(label)
        else:
            self.quiet.append(Quiet(round(self.now(), 1), f"{label}: not quiet", 0, -1, -1, -1))
        self.paused.set()


def _plug(sims: Simulators, name: str) -> Awaitable[None]:
    async def plug() -> None:
        pty = sims.running[name].pty
        assert pty is not None
        if not pty.plugged:
            pty.plug()

    return plug()


def _clear(faults: Any, name: str) -> Awaitable[None]:
    async def clear() -> None:
        setattr(faults, name, 0.0 if name == "delay" else False)

    return clear()


def _read_process(pid: int) -> tuple[int, int, int | None] | None:
    """(VmRSS in kB, open fds, RssAnon in kB) of `pid`, or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    anon = re.search(r"^RssAnon:\s+(\d+) kB", status, re.M)
    if found is None:
        return None
    return int(found.group(1)), fds, int(anon.group(1)) if anon else None


def _fd_kinds(pid: int) -> dict[str, int]:
    """The process's open descriptors by kind, so a leak can be told apart from a connection."""
    kinds: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                kind = target.split(":", 1)[0] if ":" in target else target
                if target.startswith("/dev/pts/"):
                    kind = "pty"
                elif target.startswith("/"):
                    kind = "file " + Path(target).name
                kinds[kind] += 1
    return dict(sorted(kinds.items()))


def _kinds_changed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Per kind of descriptor, how many more (or fewer) there are."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted({*before, *after})
            if after.get(k, 0) != before.get(k, 0)}  # fmt: skip


async def wait_hub_caught_up(soak: Soak, timeout: float) -> bool:
    """Until the room's outbox is empty and the hub holds its latest seq."""
    deadline = time.monotonic() + timeout
    db_path = soak.service.data / "tribune.db"
    hub_path = soak.scratch / "hub" / "hub.db"
    while time.monotonic() < deadline:
        room = await asyncio.to_thread(read_room_db, db_path)
        hub = await asyncio.to_thread(read_hub_events, hub_path)
        top = hub[-1][0] if hub else 0
        if room["outbox_rows"] == 0 and top >= room["event_seq"]:
            return True
        await asyncio.sleep(0.5)
    return False


# --- the run --------------------------------------------------------------------------------------


async def run(settings: Settings, logs: Path | None) -> dict[str, Any]:
    """Start everything, soak, settle, check, stop everything; the report."""
    _count_own_errors()
    with tempfile.TemporaryDirectory(prefix="tribune-soak-") as folder:
        scratch = Path(folder)
        for part in ("dev", "broker", "hub", "service"):
            (scratch / part).mkdir()
        sims = Simulators(scratch / "dev")
        broker = Broker(scratch / "broker")
        try:
            report = await _soak(settings, scratch, sims, broker)
        finally:
            await sims.stop()
            broker.stop()
            if logs is not None:
                await asyncio.to_thread(_keep_logs, scratch, logs)
    return report


def _keep_logs(scratch: Path, logs: Path) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    for name in (
        "service/service.log",
        "broker/mosquitto.log",
        "room.toml",
        "soak.log",
        "samples.csv",
    ):
        source = scratch / name
        if source.exists():
            (logs / source.name).write_bytes(source.read_bytes())


async def _soak(
    settings: Settings, scratch: Path, sims: Simulators, broker: Broker
) -> dict[str, Any]:
    ports = await sims.start()
    broker.start()
    config = scratch / "room.toml"
    service = ServiceProcess(
        config,
        scratch / "service" / "data",
        scratch / "service" / "service.log",
        tracemalloc=settings.tracemalloc,
    )
    limits = httpx.Limits(max_keepalive_connections=0)  # every request its own connection
    async with (
        httpx.AsyncClient(limits=limits) as http,
        running_hub(broker, scratch / "hub", expiry_margin=HUB_EXPIRY_MARGIN) as hub,
    ):
        hub_key = scratch / "hub.pem"
        hub_key.write_text(hub.public_pem, encoding="utf-8")
        config.write_text(room_toml(ports, broker.url, hub_key), encoding="utf-8")
        soak = Soak(settings, scratch, sims, broker, service, hub, http)
        try:
            await service.start(http)
            soak.api_token = (service.data / "tokens" / "api.token").read_text().strip()
            await _until(lambda: _hub_sees_room(hub), 60, "the hub sees the room online")
            if await soak.wait_quiet(QUIET_TIMEOUT) is None:
                raise RuntimeError("the room never got every device online")
            soak.baseline = await soak.quiet_count("baseline")
            if soak.baseline is None:
                raise RuntimeError("could not count the quiet room's fds and tasks (baseline)")
            return await _faults_then_checks(soak)
        finally:
            soak.stopping.set()
            soak.paused.set()
            await service.stop()
            text = "\n".join(soak.log) + "\n"
            await asyncio.to_thread((scratch / "soak.log").write_text, text, encoding="utf-8")
            rows = ["pid,life_s,at_s,rss_kb,fds,bus_seq,anon_kb"] + [
                f"{s.pid},{s.life_s:.1f},{s.at_s:.1f},{s.rss_kb},{s.fds},{s.bus_seq or ''},"
                f"{s.anon_kb or ''}"
                for s in soak.samples
            ]
            text = "\n".join(rows) + "\n"
            await asyncio.to_thread((scratch / "samples.csv").write_text, text, encoding="utf-8")


async def _faults_then_checks(soak: Soak) -> dict[str, Any]:
    settings = soak.settings
    started = time.monotonic()
    soak.faults_t0 = started
    soak.paused.set()
    loops = [
        asyncio.create_task(soak.instructor(), name="instructor"),
        asyncio.create_task(soak.operator(), name="operator"),
        asyncio.create_task(soak.injector(), name="injector"),
    ]
    sampler = asyncio.create_task(soak.sampler(), name="sampler")
    end = started + settings.minutes * 60
    every = settings.checkpoint_minutes * 60
    next_checkpoint = started + every if every > 0 else math.inf
    checkpoints = 0
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        for task in loops:
            if task.done():
                task.result()  # a driver that broke breaks the run
        if time.monotonic() >= next_checkpoint and end - time.monotonic() > 30:
            checkpoints += 1
            await soak.checkpoint(f"checkpoint {checkpoints}")
            next_checkpoint = time.monotonic() + every
    fault_seconds = time.monotonic() - started

    # Settle: no more faults or intents; everything healed; the outcome of every command known.
    soak.stopping.set()
    soak.paused.set()
    for task in loops:
        await task
    settle_started = time.monotonic()
    await soak.heal()
    await asyncio.gather(*list(soak.followers), return_exceptions=True)
    room = await soak.wait_quiet(settings.settle_timeout)
    caught_up = await wait_hub_caught_up(soak, max(10.0, settings.settle_timeout / 2))
    settle_s = time.monotonic() - settle_started
    final = await soak.quiet_count("final") if room is not None else None
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    room = await soak.room() or room

    room_db = await asyncio.to_thread(read_room_db, soak.service.data / "tribune.db")
    hub_events = await asyncio.to_thread(read_hub_events, soak.scratch / "hub" / "hub.db")
    events = check_events(room_db, hub_events)
    conflicts = sorted(seq for seq, digests in soak.hub.store.digests.items() if len(digests) > 1)
    redelivered = sum(c - 1 for c in soak.hub.store.deliveries.values() if c > 1)
    audit_missing = check_audit(soak.intents, room_db["audit"])
    convergence = check_convergence(room, soak.intents, soak.sims)
    converged = bool(
        room is not None
        and convergence["room_converged"]
        and convergence["all_online"]
        and not convergence["desired_mismatches"]
        and not convergence["device_mismatches"]
    )
    exit_code = await soak.service.stop()
    service_log = soak.service.log.read_text(errors="replace")
    scan = scan_log(service_log)
    slope, stderr, used = rss_slope(soak.samples, settings.warmup, 2 * REPLAY_EVENTS)
    baseline = soak.baseline
    assert baseline is not None
    quiet_ok = [q for q in soak.quiet if q.fds >= 0]
    acked = [i for i in soak.intents if i.acked]
    rss = [s.rss_kb for s in soak.samples]
    return {
        "seed": settings.seed,
        "minutes": settings.minutes,
        "fault_interval_s": settings.fault_interval,
        "intents": len(soak.intents),
        "intents_acknowledged": len(acked),
        "intents_by": dict(Counter(f"{i.who}:{i.kind}" for i in soak.intents)),
        "intents_unknown_outcome": sum(1 for i in soak.intents if i.applied is None),
        "intents_refused": [i.detail for i in soak.intents if i.applied is False][:20],
        "intents_missing_from_audit": len(audit_missing),
        "intents_missing_detail": audit_missing[:20],
        "faults": {
            "total": sum(soak.faults.values()),
            "by_kind": dict(sorted(soak.faults.items())),
        },
        "fault_errors": soak.fault_errors[:20],
        **events,
        "events_redelivered": redelivered,
        "seq_conflicts": len(conflicts),
        "converged": converged,
        "convergence": convergence,
        "hub_caught_up": caught_up,
        "unhandled_errors": scan.unhandled,
        "unhandled_samples": scan.unhandled_samples,
        "error_records": scan.error_records,
        "error_samples": scan.error_samples,
        "harness_errors": soak_errors(),
        "rss_slope_kb_per_min": _round(slope),
        "rss_slope_stderr_kb_per_min": _round(stderr),
        "rss_samples": used,
        "rss_settling": rss_settling(soak.samples, settings.warmup, 2 * REPLAY_EVENTS),
        "rss_kb": {
            "first": rss[0] if rss else None,
            "last": rss[-1] if rss else None,
            "max": max(rss, default=None),
        },
        "fd_leak": (final.fds - baseline.fds) if final is not None else None,
        "task_leak": (final.tasks - baseline.tasks) if final is not None else None,
        "fd_leak_max": max((q.fds - baseline.fds for q in quiet_ok), default=None),
        "fd_leak_kinds": _kinds_changed(baseline.fd_kinds, final.fd_kinds) if final else None,
        "task_leak_max": max((q.tasks - baseline.tasks for q in quiet_ok), default=None),
        "quiet": [q.__dict__ for q in soak.quiet],
        "tasks_seen": {
            "min": min((t for _, t in soak.tasks_seen), default=None),
            "max": max((t for _, t in soak.tasks_seen), default=None),
        },
        "service_lives": soak.service.lives,
        "lives": lives_summary(soak.samples),
        "rss_curve_longest_life": rss_curve(soak.samples),
        "service_exit_code": exit_code,
        "checkpoints": checkpoints,
        "fault_phase_s": round(fault_seconds, 1),
        "settle_s": round(settle_s, 1),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": {"cpus": os.cpu_count(), "system": platform.platform()},
    }


def kill_window(settings: Settings) -> float:
    """Seconds from the first fault during which `kill9` may be dealt."""
    run = settings.minutes * 60
    if settings.kill_until is not None:
        return settings.kill_until * run
    return max(0.0, run - max(0.7 * run, LAST_LIFE))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def _hub_sees_room(hub: Hub) -> bool:
    answer = await hub.http.get("/api/v1/rooms")
    return any(r["id"] == ROOM_ID and r["status"] == "online" for r in answer.json()["rooms"])


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.2)


# --- this process's own errors (the hub, the simulators) ---------------------------------------


class _ErrorCount(logging.Handler):
    """This process's unhandled exceptions (a record with a traceback, asyncio's reports, the
    loop's exception handler) and its other ERROR records."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.unhandled = 0
        self.unhandled_samples: list[str] = []
        self.errors = 0
        self.error_samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name}: {record.getMessage()}"
        if record.exc_info or record.name == "asyncio":
            self.unhandled += 1
            keep_sample(
                self.unhandled_samples, f"{line} | {record.exc_info and record.exc_info[1]!r}"
            )
        else:
            self.errors += 1
            keep_sample(self.error_samples, line)


_OWN = _ErrorCount()


def _count_own_errors() -> None:
    logging.getLogger().addHandler(_OWN)
    loop = asyncio.get_running_loop()

    def on_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        _OWN.unhandled += 1
        line = f"event loop: {context.get('message')}: {context.get('exception')!r}"
        keep_sample(_OWN.unhandled_samples, line)

    loop.set_exception_handler(on_error)


def soak_errors() -> dict[str, Any]:
    """What `_ErrorCount` saw."""
    return {
        "unhandled": _OWN.unhandled,
        "unhandled_samples": _OWN.unhandled_samples,
        "error_records": _OWN.errors,
        "error_samples": _OWN.error_samples,
    }


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds, so every child is stopped


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run, print the report as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, metavar="N")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--json-out", type=Path, metavar="FILE", help="also write the report here")
    parser.add_argument(
        "--logs",
        type=Path,
        metavar="DIR",
        help="keep the service, broker and run logs and the RSS/fd samples (samples.csv) here",
    )
    parser.add_argument(
        "--fault-interval", type=float, default=4.0, metavar="S", help="mean seconds between faults"
    )
    parser.add_argument(
        "--checkpoint-minutes", type=float, default=5.0, metavar="M",
        help="quiet counts this often (0: only at the start and the end)",
    )  # fmt: skip
    parser.add_argument("--settle-timeout", type=float, default=90.0, metavar="S")
    parser.add_argument(
        "--kill-until", type=float, default=None, metavar="F",
        help="kill -9 only in this first fraction of the run (1: all along); by default while "
        f"the rest of the run is at least 70%% of it and {LAST_LIFE:g} s, so the last life is "
        "long enough for the RSS slope past its warm-up",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=float, default=60.0, metavar="S",
        help="seconds of each service life left out of the RSS slope",
    )  # fmt: skip
    parser.add_argument(
        "--tracemalloc", type=Path, metavar="DIR",
        help="run the service under tracemalloc, its heap dumped into DIR every minute",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.fault_interval <= 0:
        parser.error("--minutes and --fault-interval must be positive")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings(
        args.minutes, args.seed, args.fault_interval, args.checkpoint_minutes,
        args.settle_timeout, args.warmup, args.kill_until,
        args.tracemalloc.resolve() if args.tracemalloc else None,
    )  # fmt: skip
    report = asyncio.run(run(settings, args.logs))
    text = json.dumps(report)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
