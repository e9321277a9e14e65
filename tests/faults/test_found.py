"""What the soak (`bench/soak.py`) found, each pinned down on its own.

1. A power set the device refuses (a Samsung display's NAK while it is busy) left the runtime
   showing the "cooling" it records before sending "off", as if the set had been accepted. The
   read-back that should correct it was refused too, and a device shown cooling counts as
   resting, whose refused polls are asked again only after a minute: for that minute the room
   waited for a cool-down that never began, and did not send "off" again.
2. A value the device refused was never sent again until a new intent or the device's return
   from offline. A refusal is often the moment's (a display busy, a projector mid-transition):
   once the fault was gone the room stayed where it was, a class-end tap leaving a display on
   for the night. A failed value is now tried again every `FAILED_RETRY_SECONDS`, quietly: the
   failure is logged and audited once.
3. aiomqtt registers its writer for a socket paho has bytes for with
   `loop.call_soon_threadsafe(loop.add_writer, fd, ...)`, which runs later. When the link broke
   in between (a broker restart while publishing), the socket was closed by then: the hub logged
   "Exception in callback ... add_writer: Bad file descriptor", and had another socket taken the
   same number meanwhile — a device's TCP link, a pty — the MQTT writer went on it instead,
   replacing that socket's own writer and polling it for ever.
4. An audit entry reached the hub only through the event bus: stored and acknowledged first,
   then queued in the outbox by the sync feed a moment later. `kill -9` (a power cut) in that
   moment — a few milliseconds of fsync — and the hub never heard of an acknowledged intent or
   help request; nor of entries made before the feed subscribed at start (a device refusing its
   restored state). Now the sync link, when it starts, queues every recent entry that was never
   queued, and an entry is queued once per result whoever asks. The same held for an entry's
   later result (a device action's `done`, an intent's `converged`): those are now matched by
   (entry, result), and an intent's `converged` goes on the bus like every other result.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.sync.conftest import Broker
from tribune import reconcile
from tribune.config import parse_config
from tribune.drivers.capabilities import Value
from tribune.drivers.runtime import DeviceRuntime, HealthStatus, Source
from tribune.errors import DeviceError
from tribune.profiles.loader import ProfileLoader
from tribune.room import Room
from tribune.sim import Power, start_simulator
from tribune.store import Store
from tribune.sync import SyncClient
from tribune.sync.sockets import guard_sockets

SPEED = 10.0


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_refused_power_set_does_not_leave_the_hoped_for_cooling_shown(
    profiles: ProfileLoader,
) -> None:
    profile = profiles.load("samsung-mdc").profile
    async with start_simulator("samsung-mdc", tcp=("127.0.0.1", 0), speed=SPEED) as sim:
        sim.sim.power.force(Power.ON)
        runtime = DeviceRuntime(
            "monitor", profile, f"tcp://127.0.0.1:{sim.port}", options={"id": "01"}
        )
        await runtime.start()
        try:
            await _until(lambda: runtime.state.get("power") is not None)
            assert runtime.state["power"].value == "on"

            sim.faults.busy = True  # MDC has no busy code: a busy display NAKs everything
            try:
                await runtime.set("power", "off")
            except DeviceError:
                pass
            else:
                raise AssertionError("the busy display accepted power off")
            # Still on, as the device said: not the cooling the set hoped for.
            shown = runtime.state["power"]
            assert shown.value == "on", shown
            assert shown.source is not Source.SET

            sim.faults.busy = False
            await asyncio.sleep(1.0)  # the read-back, refused or not, changes nothing
            assert runtime.state["power"].value == "on"
            assert sim.sim.power.state is Power.ON
        finally:
            await runtime.stop()


async def test_a_refused_value_is_tried_again_once_the_device_takes_it_and_audited_once(
    profiles: ProfileLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile, "FAILED_RETRY_SECONDS", 0.5, raising=False)
    profile = profiles.load("samsung-mdc").profile
    failures: list[tuple[str, Value, str]] = []

    async def audit(device: str, capability: str, value: Value, error: str) -> None:
        failures.append((capability, value, error))

    async with start_simulator("samsung-mdc", tcp=("127.0.0.1", 0), speed=SPEED) as sim:
        sim.sim.power.force(Power.ON)
        runtime = DeviceRuntime(
            "monitor", profile, f"tcp://127.0.0.1:{sim.port}", options={"id": "01"}
        )
        desired: dict[str, Value] = {"power": "on"}
        reconciler = reconcile.DeviceReconciler(runtime, lambda: desired, on_failure=audit)
        await runtime.start()
        await reconciler.start()
        try:
            await _until(lambda: reconciler.converged)
            sim.faults.busy = True
            desired["power"] = "off"  # class end, while the display is busy
            reconciler.wake()
            await _until(lambda: reconciler.status["power"].state == "failed")
            await asyncio.sleep(2.0)  # tried again a few times meanwhile, still refused
            assert reconciler.status["power"].state == "failed"
            assert runtime.health.status is HealthStatus.ONLINE  # it answers all along

            sim.faults.busy = False  # no new intent, no outage: only the retry can help
            await _until(lambda: sim.sim.power.state is not Power.ON, timeout=5.0)
            await _until(lambda: reconciler.converged, timeout=10.0)
            assert len(failures) == 1, failures  # one failure, said once
            assert failures[0][:2] == ("power", "off")
        finally:
            await reconciler.stop()
            await runtime.stop()


@pytest.mark.parametrize("reused", [True, False], ids=["fd-reused", "fd-closed"])
async def test_a_write_registered_as_the_link_breaks_lands_on_no_other_socket(
    broker: Broker, reused: bool
) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    client = aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    guard_sockets(client)
    async with client:
        paho = client._client
        paho.publish("tribune/v1/baku/room-1/events", b"{}", qos=1)  # a writer, deferred
        paho._sock_close()  # the broker went away before the loop ran it
        other = socket.socket() if reused else None  # takes the freed descriptor number
        try:
            await asyncio.sleep(0.2)
            landed = other is not None and loop.remove_writer(other.fileno())
        finally:
            if other is not None:
                other.close()
    assert not landed, "the MQTT writer was registered on another socket"
    assert errors == []


# --- 4. audit entries the outbox never got ------------------------------------------------------

NO_DEVICES = """
[room]
id = "baku/room-9"
name = "help desk"

[devices]

[sync]
broker = "mqtt://127.0.0.1:{port}"
reconnect_max = 1
"""


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _queued_audit_ids(db_path: Path) -> list[int]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT payload FROM outbox WHERE seq IS NOT NULL").fetchall()
    events = [json.loads(row[0]) for row in rows]
    return sorted(e["data"]["id"] for e in events if e["type"] in ("audit", "help"))


def _audit_ids(db_path: Path) -> list[int]:
    with sqlite3.connect(db_path) as db:
        return sorted(row[0] for row in db.execute("SELECT id FROM audit"))


@pytest.mark.timeout(60)
def test_a_help_request_acknowledged_just_before_a_kill_reaches_the_outbox(
    tmp_path: Path,
) -> None:
    # No broker listens: whatever is queued stays in the outbox, where this test reads it.
    config = tmp_path / "room.toml"
    config.write_text(NO_DEVICES.format(port=_unused_port()), encoding="utf-8")
    port = _unused_port()
    base = f"http://127.0.0.1:{port}/api/v1"

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tribune", "serve", "--config", str(config),
             "--data-dir", str(tmp_path / "data"), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):
                    return process
            except OSError:
                time.sleep(0.05)
        process.kill()
        raise AssertionError("tribune serve did not start")

    acknowledged = []
    for i in range(3):
        process = start()
        request = urllib.request.Request(
            f"{base}/help", data=json.dumps({"note": f"projector {i}"}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as answer:
            acknowledged.append(json.loads(answer.read())["audit_id"])
        os.kill(process.pid, signal.SIGKILL)  # the moment the panel heard "sent"
        process.wait(10)
    db_path = tmp_path / "data" / "tribune.db"
    assert _audit_ids(db_path) == sorted(acknowledged)

    process = start()  # back after the power cut
    try:
        deadline = time.monotonic() + 10
        while _queued_audit_ids(db_path) != sorted(acknowledged):
            assert time.monotonic() < deadline, _queued_audit_ids(db_path)
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(10)
    assert _queued_audit_ids(db_path) == sorted(acknowledged)  # each once


async def test_entries_made_before_the_link_started_are_queued_once(tmp_path: Path) -> None:
    config = parse_config(NO_DEVICES.format(port=_unused_port()), "room.toml")
    assert config.sync is not None
    store = Store(tmp_path / "tribune.db")
    await store.open()
    room = Room(config, store)
    await room.start()
    try:
        # Audited while nobody followed the bus: at start, or in the instant before a crash.
        early = await store.audit("system", "projector", "device.failed", {}, "failed: ERR2")
        room.bus.publish("audit", early.as_dict())
        link = SyncClient(room, config.sync, base_dir=tmp_path)
        await link.start()
        try:
            late = await store.audit("panel", None, "help.request", {"note": "x"}, "sent")
            room.bus.publish("audit", late.as_dict())
            room.bus.publish("audit", late.as_dict())  # the same word twice: queued once
            deadline = time.monotonic() + 5
            while _queued_audit_ids(tmp_path / "tribune.db") != [early.id, late.id]:
                assert time.monotonic() < deadline, _queued_audit_ids(tmp_path / "tribune.db")
                await asyncio.sleep(0.05)
            done = {**late.as_dict(), "result": "acknowledged"}
            room.bus.publish("audit", done)  # a new result is news
            deadline = time.monotonic() + 5
            while len(_queued_audit_ids(tmp_path / "tribune.db")) < 3:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            await link.stop()
    finally:
        await room.stop()
        await store.close()
    assert _queued_audit_ids(tmp_path / "tribune.db") == [early.id, late.id, late.id]


async def test_an_upgraded_room_does_not_send_its_old_history_again(tmp_path: Path) -> None:
    path = tmp_path / "tribune.db"
    store = Store(path)
    await store.open()
    await store.audit("panel", None, "scene.activate", {"scene": "class-start"}, "accepted")
    await store.close()
    with sqlite3.connect(path) as db:  # a data dir from before the sync link kept this
        db.execute("DELETE FROM meta WHERE key = 'sync.audit_from'")
    async with _linked(tmp_path):
        await asyncio.sleep(0.5)
    assert _queued_audit_ids(path) == []


@asynccontextmanager
async def _linked(folder: Path) -> AsyncIterator[tuple[Room, Store, SyncClient]]:
    """A room on no devices in `folder`, started with its sync link (no broker answers)."""
    config = parse_config(NO_DEVICES.format(port=_unused_port()), "room.toml")
    assert config.sync is not None
    store = Store(folder / "tribune.db")
    await store.open()
    room = Room(config, store)
    await room.start()
    link = SyncClient(room, config.sync, base_dir=folder)
    await link.start()
    try:
        yield room, store, link
    finally:
        await link.stop()
        await room.stop()
        await store.close()


async def test_a_later_result_stored_before_a_kill_is_queued_when_the_link_starts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tribune.db"
    async with _linked(tmp_path) as (room, store, link):
        entry = await store.audit("api", "t", "device.action", {"device": "x"}, "running")
        room.bus.publish("audit", entry.as_dict())
        deadline = time.monotonic() + 5
        while _queued_audit_ids(path) != [entry.id]:
            assert time.monotonic() < deadline, _queued_audit_ids(path)
            await asyncio.sleep(0.05)
        # Its `done` is stored; the kill comes before the bus event that would queue it.
        await link.stop()
        await store.set_result(entry.id, "done")

    async with _linked(tmp_path):
        deadline = time.monotonic() + 5
        while _queued_audit_ids(path) != [entry.id, entry.id]:
            assert time.monotonic() < deadline, _queued_audit_ids(path)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    with sqlite3.connect(path) as db:
        results = [
            json.loads(row[0])["data"]["result"]
            for row in db.execute("SELECT payload FROM outbox WHERE seq IS NOT NULL ORDER BY id")
            if json.loads(row[0])["type"] == "audit"
        ]
    assert results == ["running", "done"]  # each word once, the later one too


async def test_an_intent_that_converged_is_told_to_the_hub(tmp_path: Path) -> None:
    config = parse_config(NO_DEVICES.format(port=_unused_port()), "room.toml")
    store = Store(tmp_path / "tribune.db")
    await store.open()
    room = Room(config, store)
    await room.start()
    subscription = room.bus.subscribe()
    try:
        entry = await store.audit("panel", None, "scene.activate", {"scene": "x"}, "accepted")
        await room._close_intents([entry.id])
        seen = []
        while not subscription.queue.empty():
            event = subscription.queue.get_nowait()
            if event.kind == "audit":
                seen.append((event.data["id"], event.data["result"]))
        assert seen == [(entry.id, "converged")]
        assert (await store.audit_tail(1))[0].result == "converged"
    finally:
        room.bus.unsubscribe(subscription)
        await room.stop()
        await store.close()
