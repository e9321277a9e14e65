"""The link against a real Mosquitto: birth, retained state, last will, reconnects, outbox."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.room.conftest import SimRoom
from tests.sync.conftest import Broker, linked_room, listening
from tribune.room import Room
from tribune.sync.client import BATCH

BASE = "tribune/v1/baku/room-1"


async def test_birth_and_state_are_retained_and_visible_within_a_second(
    sim_room: SimRoom, broker: Broker
) -> None:
    started = time.monotonic()
    async with linked_room(sim_room, broker.url) as (room, link):
        await asyncio.wait_for(link.connected.wait(), 5)
        # A subscriber that comes later gets both from the broker's retained store.
        async with listening(broker.port, f"{BASE}/#") as seen:
            await seen.wait_for(lambda: seen.on("status") and seen.on("state"), timeout=1.0)
        assert time.monotonic() - started < 3.0
        status = seen.on("status")[-1]
        assert status["status"] == "online"
        state = seen.on("state")[-1]
        assert state["room"] == "baku/room-1"
        assert set(state["snapshot"]["devices"]) == {"projector", "board", "switcher"}
        firsts = {t.rsplit("/", 1)[1]: r for t, _, r in reversed(seen.messages)}
        assert firsts["status"], "retained"
        assert firsts["state"], "retained"
        first = state["revision"]

        # A change re-publishes it with a higher revision.
        async with listening(broker.port, f"{BASE}/state") as later:
            await room.activate_scene("class-start", who="panel")
            await later.wait_for(
                lambda: any(
                    s["revision"] > first and s["snapshot"]["source"] == "lectern-pc"
                    for s in later.on("state")
                )
            )


async def test_clean_stop_says_offline(sim_room: SimRoom, broker: Broker) -> None:
    async with linked_room(sim_room, broker.url) as (_, link):
        await asyncio.wait_for(link.connected.wait(), 5)
    async with listening(broker.port, f"{BASE}/status") as seen:
        await seen.wait_for(lambda: seen.on("status"))
    assert seen.on("status")[-1] == {"status": "offline"}


SERVE_TOML = """
[room]
id = "baku/room-9"
name = "Killed room"

[devices]

[sync]
broker = "{url}"
keepalive = 5
"""


async def test_last_will_offline_when_the_room_process_dies(broker: Broker, tmp_path: Path) -> None:
    config = tmp_path / "room.toml"
    config.write_text(SERVE_TOML.format(url=broker.url))
    base = "tribune/v1/baku/room-9"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tribune",
            "serve",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        async with listening(broker.port, f"{base}/status") as seen:
            await seen.wait_for(
                lambda: {"online"} <= {s["status"] for s in seen.on("status")}, timeout=20
            )
            process.send_signal(signal.SIGKILL)
            await seen.wait_for(lambda: seen.on("status")[-1] == {"status": "offline"}, 10)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)
    # Retained: a late subscriber sees it too.
    async with listening(broker.port, f"{base}/status") as late:
        await late.wait_for(lambda: late.on("status"))
    assert late.on("status")[-1] == {"status": "offline"}


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _until_queued(room: Room, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while await room.store.outbox_count() < count:
        assert time.monotonic() < deadline, "outbox did not fill"
        await asyncio.sleep(0.05)


def _seqs(events: list[dict[str, object]]) -> list[int]:
    return [int(e["seq"]) for e in events]  # type: ignore[call-overload]


async def test_broker_restart_reconnects_and_the_outbox_drains_without_loss_or_duplicates(
    sim_room: SimRoom, broker: Broker
) -> None:
    async with linked_room(sim_room, broker.url) as (room, link):
        await asyncio.wait_for(link.connected.wait(), 5)
        async with listening(
            broker.port, f"{BASE}/events", identifier="hub-test", persistent=True
        ) as seen:
            for i in range(5):
                await room.store.audit("cli", None, "note", {"i": i}, "done")
                room.bus.publish("audit", {"action": "note", "i": i})
            await seen.wait_for(
                lambda: {e["data"].get("i") for e in seen.on("events")} >= set(range(5))
            )
        broker.stop()
        await _until(lambda: not link.connected.is_set())
        for i in range(5, 25):  # while the broker is down: into the outbox
            room.bus.publish("audit", {"action": "note", "i": i})
        await _until_queued(room, 20)
        broker.start()
        async with listening(
            broker.port,
            f"{BASE}/events",
            identifier="hub-test",
            persistent=True,
            listener=seen,
        ):
            await seen.wait_for(
                lambda: {e["data"].get("i") for e in seen.on("events")} >= set(range(25)),
                timeout=15,
            )
        await asyncio.wait_for(link.connected.wait(), 5)
        assert link.connects >= 2
        # At least once: an event whose PUBACK the broker's stop swallowed is sent again (the
        # hub keeps each (room, seq) once: tests/hub/test_faults.py). Nothing is lost or reordered.
        delivered = _seqs(seen.on("events"))
        seqs = list(dict.fromkeys(delivered))  # first deliveries
        assert seqs == sorted(seqs), "in order"
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no gaps"
        again = len(delivered) - len(seqs)
        assert again <= BATCH, f"{again} sent again: more than were in flight at the stop"
        deadline = time.monotonic() + 5
        while await room.store.outbox_count():  # drained (new device events may still come)
            assert time.monotonic() < deadline, "the outbox did not drain"
            await asyncio.sleep(0.05)


async def test_the_outbox_survives_a_service_restart(sim_room: SimRoom, broker: Broker) -> None:
    broker.stop()  # the link is down while the room works
    async with linked_room(sim_room, broker.url) as (room, _):
        for i in range(3):
            room.bus.publish("audit", {"action": "note", "i": i})
        await _until_queued(room, 3)
        waiting = await room.store.outbox_count()
        assert waiting >= 3
    broker.start()
    async with (
        listening(broker.port, f"{BASE}/events") as seen,
        linked_room(sim_room, broker.url) as (room, link),
    ):
        await asyncio.wait_for(link.connected.wait(), 5)
        await seen.wait_for(lambda: {e["data"].get("i") for e in seen.on("events")} >= {0, 1, 2})
        await seen.wait_for(lambda: len(seen.on("events")) >= waiting)
        seqs = _seqs(seen.on("events"))
        assert seqs == list(range(1, len(seqs) + 1))
