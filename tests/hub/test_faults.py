"""Faults between rooms and the hub on a real Mosquitto (issue 5, the hub's side).

- The broker restarts while a room keeps working: both links come back, and the hub ends up
  with every event of the room once — seq 1..N, no gap, no duplicate, the room's own payloads.
- The hub is away while the room keeps working: its persistent session at the broker delivers
  what it missed when it comes back with the same client id and data directory.
- A room process dies without a word (SIGKILL) or goes silent (SIGSTOP): the broker's last will
  makes it `offline` in the hub within 1.5 × keepalive; restarted (resumed), it is `online`.
- The hub stops while events it has received wait to be stored: it acknowledges a message
  only once stored, so the broker sends the rest again when the hub is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.hub.conftest import RunningHub, running_hub
from tests.hub.test_hub import eventually as hub_eventually
from tests.room.conftest import SimRoom
from tests.sync.conftest import Broker, linked_room, publish
from tribune.hub.store import Incoming
from tribune.room import Room
from tribune.sync.outbox import Outbox

ROOM = "baku/room-1"
EVENTS_TOPIC = f"tribune/v1/{ROOM}/events"
SOURCES = ("laptop", "lectern-pc")
ALL = 1_000_000  # "every event" for the store's `room(..., events=)`


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """`tests.hub.test_hub.eventually` with a generous default (CI is loaded)."""
    return await hub_eventually(check, timeout, what)


# --- what the room produced ---------------------------------------------------------------


@dataclass
class Produced:
    """Every event the room's outbox numbered: (seq, type, data as JSON would carry it)."""

    events: list[tuple[int, str, Any]] = field(default_factory=list)

    def sorted(self) -> list[tuple[int, str, Any]]:
        return sorted(self.events, key=lambda e: e[0])


@pytest.fixture
def produced(monkeypatch: pytest.MonkeyPatch) -> Produced:
    """Records what `Outbox.event` queued (its seq and body), for comparing with the hub."""
    seen = Produced()
    original = Outbox.event

    async def recording(self: Outbox, kind: str, data: dict[str, Any]) -> int | None:
        seq = await original(self, kind, data)
        assert seq is not None
        seen.events.append((seq, kind, json.loads(json.dumps(data))))
        return seq

    monkeypatch.setattr(Outbox, "event", recording)
    return seen


async def work(room: Room, first: int, count: int) -> None:
    """Real room activity: switch sources (an audit entry, a source change, device changes)."""
    for i in range(first, first + count):
        await room.select_source(SOURCES[i % 2], who="api", actor=f"fault-{i}")


async def room_seq(room: Room) -> int:
    """The room's own event counter (stored next to the outbox)."""
    return int(await room.store.get_meta("sync.event_seq") or 0)


async def room_revision(room: Room) -> int:
    """The room's latest `state` revision."""
    return int(await room.store.get_meta("sync.state_revision") or 0)


# --- what the hub kept --------------------------------------------------------------------


async def hub_events(hub: RunningHub) -> list[dict[str, Any]]:
    """Every event the hub stored for the room, oldest first."""
    found = await hub.store.room(ROOM, events=ALL)
    if found is None:
        return []
    events: list[dict[str, Any]] = found["events"]
    return list(reversed(events))


async def hub_has_everything(hub: RunningHub, room: Room, timeout: float = 10.0) -> int:
    """Until the room's outbox is empty and the hub holds seq 1..N (N: the room's counter)."""
    last: dict[str, Any] = {}

    async def complete() -> int | None:
        n = await room_seq(room)
        waiting = await room.store.outbox_count()
        seqs = [e["seq"] for e in await hub_events(hub)]
        last.update(room_seq=n, outbox=waiting, hub=_summary(seqs, n))
        return n if n and not waiting and seqs == list(range(1, n + 1)) else None

    deadline = time.monotonic() + timeout
    while True:
        n = await complete()
        if n:
            return n
        if time.monotonic() > deadline:
            raise AssertionError(f"the hub does not hold seq 1..N within {timeout} s: {last}")
        await asyncio.sleep(0.05)


def _summary(seqs: list[int], n: int) -> dict[str, Any]:
    dups = sorted({s for s in seqs if seqs.count(s) > 1})
    missing = sorted(set(range(1, n + 1)) - set(seqs))
    return {"count": len(seqs), "missing": missing[:20], "duplicates": dups[:20]}


def assert_same_as_the_room(stored: list[dict[str, Any]], produced: Produced, n: int) -> None:
    """The hub's events are the room's, each once and in seq order."""
    expected = produced.sorted()
    assert [seq for seq, _, _ in expected] == list(range(1, n + 1)), "the recorder saw them all"
    got = [(e["seq"], e["type"], e["data"]) for e in stored]
    assert got == expected
    assert {e["room"] for e in stored} == {ROOM}


def assert_each_action_once(stored: list[dict[str, Any]], count: int) -> None:
    """Independent of the recorder: each `select_source` of `work()` is in the hub, each of its
    results (accepted, then converged) once."""
    words = [
        (e["data"]["actor"], e["data"]["result"])
        for e in stored
        if e["type"] == "audit" and e["data"].get("action") == "source.select"
    ]
    assert len(words) == len(set(words)), words
    assert sorted({actor for actor, _ in words}) == sorted(f"fault-{i}" for i in range(count))


async def redeliver(broker: Broker, event: dict[str, Any]) -> None:
    """What a room sends again when a PUBACK was lost: the same (room, seq), here altered so
    that a hub that overwrites instead of ignoring it would show."""
    again = {**event, "data": {"redelivered": True}, "type": "alert"}
    await publish(broker.port, EVENTS_TOPIC, json.dumps(again))


async def linked(*events: asyncio.Event, timeout: float = 15.0) -> None:
    for event in events:
        await asyncio.wait_for(event.wait(), timeout)


# --- broker restart -----------------------------------------------------------------------


async def test_broker_restart_both_links_come_back_and_the_hub_keeps_every_event_once(
    sim_room: SimRoom, broker: Broker, hub_dir: Path, produced: Produced
) -> None:
    async with (
        running_hub(broker, hub_dir) as hub,
        linked_room(sim_room, broker.url) as (room, link),
    ):
        await linked(hub.link.connected, link.connected)

        # Before: the hub hears the room as it works.
        await work(room, 0, 4)
        await hub_has_everything(hub, room)
        hub_connects, room_connects = hub.link.connects, link.connects
        revision_before = (await hub.store.room(ROOM) or {})["revision"]
        assert revision_before

        broker.stop()
        await eventually(
            lambda: _true(not hub.link.connected.is_set() and not link.connected.is_set()),
            what="both links see the broker gone",
        )
        held, before = len(await hub_events(hub)), await room_seq(room)
        # During: the room keeps working; its events wait in its SQLite outbox.
        await work(room, 4, 8)
        await eventually(
            lambda: _at_least(room.store.outbox_count(), 16), what="events queued in the outbox"
        )
        assert await room_seq(room) >= before + 16
        assert len(await hub_events(hub)) == held  # nothing could reach the hub

        broker.start()
        await linked(hub.link.connected, link.connected)
        assert hub.link.connects > hub_connects, "the hub reconnected"
        assert link.connects > room_connects, "the room reconnected"

        # After: more work, and an event sent again as if its PUBACK had been lost.
        await work(room, 12, 4)
        first = (await hub_events(hub))[0]
        await redeliver(broker, first)

        n = await hub_has_everything(hub, room, timeout=20)
        stored = await hub_events(hub)
        assert_same_as_the_room(stored, produced, n)
        assert_each_action_once(stored, 16)
        # The API shows the latest 50 of them, newest first.
        body = (await hub.http.get(f"/api/v1/rooms/{ROOM}")).json()
        assert [e["seq"] for e in body["events"]] == list(range(n, max(n - 50, 0), -1))
        assert body["status"] == "online"
        page = await hub.http.get(f"/api/v1/rooms/{ROOM}/events", params={"limit": 1000})
        assert [e["seq"] for e in page.json()["events"]] == list(range(n, 0, -1))

        # The state the hub shows is the room's latest, published after the reconnect.
        async def same_revision() -> bool:
            latest = await room_revision(room)
            shown = (await hub.store.room(ROOM) or {})["revision"]
            return bool(shown == latest)

        await eventually(same_revision, what="the hub has the room's latest state revision")
        assert (await hub.store.room(ROOM) or {})["revision"] > revision_before


async def _true(value: bool) -> bool:
    return value


async def _at_least(count: Awaitable[int], least: int) -> bool:
    return await count >= least


# --- the hub away -------------------------------------------------------------------------


async def test_a_hub_that_was_away_gets_what_it_missed_from_its_session_once(
    sim_room: SimRoom, broker: Broker, hub_dir: Path, produced: Produced
) -> None:
    async with running_hub(broker, hub_dir) as hub:
        # The hub's session (and its subscriptions) at the broker exists before the room talks.
        await linked(hub.link.connected)
    async with linked_room(sim_room, broker.url) as (room, link):
        await linked(link.connected)
        async with running_hub(broker, hub_dir) as hub:
            await linked(hub.link.connected)
            await work(room, 0, 4)
            await hub_has_everything(hub, room)
            first = (await hub_events(hub))[0]
            seen_before = len(await hub_events(hub))

        # The hub is away (a clean stop); the room keeps working and its link stays up.
        await work(room, 4, 8)
        await eventually(
            lambda: _at_least(_sent(room), seen_before + 16),
            what="the room handed its events to the broker",
        )
        assert link.connects == 1, "the room's link never broke"
        await redeliver(broker, first)  # a redelivery waits at the broker too

        # Back with the same client id and data directory: the session delivers the rest.
        async with running_hub(broker, hub_dir) as hub:
            await linked(hub.link.connected)
            await work(room, 12, 4)  # and it hears new ones as well
            n = await hub_has_everything(hub, room)
            stored = await hub_events(hub)
            assert n > seen_before + 16
            assert_same_as_the_room(stored, produced, n)
            assert_each_action_once(stored, 16)
            listed = (await hub.http.get("/api/v1/rooms")).json()["rooms"]
            assert [(r["id"], r["status"]) for r in listed] == [(ROOM, "online")]


async def _sent(room: Room) -> int:
    """Events the room has handed to the broker (numbered, no longer in the outbox)."""
    return await room_seq(room) if not await room.store.outbox_count() else 0


# --- a room that dies or goes silent ------------------------------------------------------

KILLED = "baku/room-9"
KEEPALIVE = 5  # the smallest `[sync] keepalive`: the broker gives up after 1.5 × this
MARGIN = 5.0  # for a loaded CI machine

SERVE_TOML = """
[room]
id = "{room}"
name = "A room that dies"

[devices]

[sync]
broker = "{url}"
keepalive = {keepalive}
reconnect_max = 1
"""


@asynccontextmanager
async def room_process(broker: Broker, folder: Path) -> AsyncIterator[RoomProcess]:
    """`tribune serve` of a device-less room whose `[sync]` points at `broker`."""
    config = folder / "room.toml"
    config.write_text(SERVE_TOML.format(room=KILLED, url=broker.url, keepalive=KEEPALIVE))
    running = RoomProcess(config, folder / "data", folder / "room.log")
    try:
        yield running
    finally:
        running.kill()


@dataclass
class RoomProcess:
    """One `tribune serve` process at a time, on the same config and data directory."""

    config: Path
    data: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.kill()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tribune",
                    "serve",
                    "--config",
                    str(self.config),
                    "--data-dir",
                    str(self.data),
                    "--port",
                    "0",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def send(self, signum: int) -> None:
        """Send a signal to the running process."""
        assert self.process is not None
        assert self.process.poll() is None, self.tail()
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no clean disconnect, no `offline` of its own."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(10)
        self.process = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


async def listed_status(
    hub: RunningHub, want: str, *, with_state: bool = False
) -> dict[str, Any] | None:
    """The room's row in `GET /rooms` when its status is `want` (and, `with_state`, once the
    hub has its state too: the status message can come in a moment before it)."""
    answer = await hub.http.get("/api/v1/rooms")
    assert answer.status_code == 200, answer.text
    rows = [r for r in answer.json()["rooms"] if r["id"] == KILLED]
    if not rows or rows[0]["status"] != want:
        return None
    return None if with_state and rows[0]["revision"] is None else rows[0]


async def test_a_killed_room_is_offline_in_the_hub_by_its_last_will_and_online_again_after(
    broker: Broker, hub_dir: Path, tmp_path: Path
) -> None:
    async with (
        running_hub(broker, hub_dir) as hub,
        room_process(broker, tmp_path) as room,
    ):
        await linked(hub.link.connected)
        room.start()
        online = await eventually(
            lambda: listed_status(hub, "online", with_state=True),
            timeout=30,
            what="the room online, its state in the hub",
        )

        room.send(signal.SIGKILL)
        killed = time.monotonic()
        room.kill()  # reaped
        gone = await eventually(
            lambda: listed_status(hub, "offline"),
            timeout=KEEPALIVE * 1.5 + MARGIN,
            what="offline after SIGKILL",
        )
        assert time.monotonic() - killed < KEEPALIVE * 1.5 + MARGIN
        assert gone["status_at"] >= online["status_at"]
        assert gone["revision"] >= online["revision"]  # its last state is kept

        room.start()  # the same config and data directory
        back = await eventually(
            lambda: listed_status(hub, "online"), timeout=30, what="online after a restart"
        )
        assert back["status_at"] > gone["status_at"]


async def test_a_silent_room_is_offline_after_one_and_a_half_keepalives_and_back_when_it_wakes(
    broker: Broker, hub_dir: Path, tmp_path: Path
) -> None:
    # SIGSTOP: the process neither talks nor closes its socket (a hung machine, a cut cable):
    # only the keepalive tells the broker, which then sends the last will.
    async with (
        running_hub(broker, hub_dir) as hub,
        room_process(broker, tmp_path) as room,
    ):
        await linked(hub.link.connected)
        room.start()
        await eventually(lambda: listed_status(hub, "online"), timeout=30, what="the room online")

        room.send(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            gone = await eventually(
                lambda: listed_status(hub, "offline"),
                timeout=KEEPALIVE * 1.5 + MARGIN,
                what="offline after 1.5 x keepalive of silence",
            )
            assert time.monotonic() - stopped < KEEPALIVE * 1.5 + MARGIN
        finally:
            room.send(signal.SIGCONT)
        back = await eventually(
            lambda: listed_status(hub, "online"), timeout=30, what="online after waking"
        )
        assert back["status_at"] > gone["status_at"]


# --- the hub acknowledges an event only once it has stored it -------------------------------


async def test_events_received_but_not_yet_stored_when_the_hub_stops_are_not_lost(
    sim_room: SimRoom,
    broker: Broker,
    hub_dir: Path,
    produced: Produced,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_hub(broker, hub_dir) as hub:
        await linked(hub.link.connected)
    async with linked_room(sim_room, broker.url) as (room, link):
        await linked(link.connected)
        async with running_hub(broker, hub_dir) as hub:
            await linked(hub.link.connected)
            # A busy hub (a burst after an outage): each event takes a while to store.
            take_in = hub.store.take_in

            async def slowly(messages: Sequence[Incoming]) -> list[bool]:
                kept = []
                for message in messages:
                    await asyncio.sleep(0.05)
                    kept += await take_in([message])
                return kept

            monkeypatch.setattr(hub.store, "take_in", slowly)
            await work(room, 0, 10)
            # The broker has them all (the room's outbox is empty); the hub is storing them.
            await eventually(lambda: _at_least(_sent(room), 20), what="the room sent its events")
            await eventually(
                lambda: _at_least(_count(hub_events(hub)), 2), what="the hub storing them"
            )
            assert len(await hub_events(hub)) < await room_seq(room), "a backlog in the hub"
        # Stopped (a deploy, say) with a backlog; back with the same client id and data.
        async with running_hub(broker, hub_dir) as hub:
            await linked(hub.link.connected)
            n = await hub_has_everything(hub, room, timeout=5)
            assert_same_as_the_room(await hub_events(hub), produced, n)


async def _count(items: Awaitable[list[Any]]) -> int:
    return len(await items)
