"""HubStore on its own: highest revision wins, events once per (room, seq), command status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tribune.hub.store import HubCommand, HubStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HubStore]:
    opened = HubStore(tmp_path / "hub.db")
    await opened.open()
    yield opened
    await opened.close()


def state(revision: int) -> dict[str, object]:
    return {"revision": revision, "at": "2025-03-01T18:00:00.000Z", "snapshot": {"n": revision}}


async def test_the_highest_revision_wins(store: HubStore) -> None:
    assert await store.set_state("baku/room-1", 5, state(5), 1.0)
    assert not await store.set_state("baku/room-1", 4, state(4), 2.0)  # a late, older one
    assert not await store.set_state("baku/room-1", 5, state(5), 3.0)
    room = await store.room("baku/room-1")
    assert room is not None
    assert (room["revision"], room["snapshot"], room["last_seen"]) == (5, {"n": 5}, 3.0)


async def test_events_are_kept_once_per_room_and_seq(store: HubStore) -> None:
    event = {"seq": 1, "type": "audit", "data": {}}
    assert await store.add_event("baku/room-1", 1, event, 1.0)
    assert not await store.add_event("baku/room-1", 1, event, 2.0)  # redelivered
    assert await store.add_event("ganja/room-1", 1, event, 2.0)  # another room's seq 1
    room = await store.room("baku/room-1")
    assert room is not None
    assert room["events"] == [event]
    assert [r["id"] for r in await store.rooms()] == ["baku/room-1", "ganja/room-1"]


async def test_a_command_moves_queued_delivered_done_per_room(store: HubStore) -> None:
    command = HubCommand("c-1", "scene.activate", {"scene": "class-end"}, "op", 100.0)
    await store.add_command(command, ["baku/room-1", "baku/room-2"])
    assert [d.room for d in await store.queued()] == ["baku/room-1", "baku/room-2"]
    await store.mark_delivered("c-1", "baku/room-1")
    assert [d.room for d in await store.queued()] == ["baku/room-2"]
    assert await store.set_result("c-1", "baku/room-1", "done", {"status": "done"}, 50.0)
    await store.mark_delivered("c-1", "baku/room-1")  # a late PUBACK does not undo `done`
    assert not await store.set_result("c-1", "baku/room-9", "done", {}, 50.0)
    assert await store.expire_overdue(before=99.0, at=99.0) == []
    assert await store.expire_overdue(before=101.0, at=101.0) == [("c-1", "baku/room-2")]
    found = await store.command("c-1")
    assert found is not None
    statuses = {room: entry["status"] for room, entry in found["rooms"].items()}
    assert statuses == {"baku/room-1": "done", "baku/room-2": "expired"}
    assert await store.command("c-2") is None


async def test_messages_arriving_together_are_taken_in_one_go_with_the_same_rules(
    store: HubStore,
) -> None:
    from tribune.hub.store import Incoming

    room = "baku/room-1"
    event = {"seq": 1, "type": "audit", "data": {}}
    kept = await store.take_in(
        [
            Incoming("status", room, {"status": "online"}, 1.0),
            Incoming("state", room, {"revision": 5, **state(5)}, 1.0),
            Incoming("state", room, {"revision": 4, **state(4)}, 1.0),  # older, later
            Incoming("event", room, event, 1.0),
            Incoming("event", room, event, 1.0),  # the same seq twice in one batch
            Incoming("result", room, {"id": "nope", "status": "done"}, 1.0),  # never sent
        ]
    )
    assert kept == [True, True, False, True, False, False]
    found = await store.room(room)
    assert found is not None
    assert (found["status"], found["revision"], found["events"]) == ("online", 5, [event])
