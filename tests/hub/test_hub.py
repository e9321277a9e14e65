"""The hub with a real Mosquitto and a real room: state, commands through the API, expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.hub.conftest import running_hub
from tests.room.conftest import SimRoom
from tests.sync.conftest import Broker, linked_room

ROOM = "baku/room-1"


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 5.0, what: str = "condition"
) -> Any:
    """The first truthy value of `check()`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s; last: {value!r}")
        await asyncio.sleep(0.02)


async def command_outcome(http: httpx.AsyncClient, room: str, body: dict[str, Any]) -> Any:
    """Send `body` to `room` through the hub's API; the command once the room answered it."""
    answer = await http.post(f"/api/v1/rooms/{room}/commands", json=body)
    assert answer.status_code == 202, answer.text
    command_id = answer.json()["id"]

    async def finished() -> dict[str, Any] | None:
        found: dict[str, Any] = (await http.get(f"/api/v1/commands/{command_id}")).json()
        return found if found["rooms"][room]["status"] not in ("queued", "delivered") else None

    return await eventually(finished)


async def test_room_state_is_visible_in_the_hub_within_a_second(
    sim_room: SimRoom, broker: Broker, hub_dir: Path
) -> None:
    async with running_hub(broker, hub_dir) as hub:
        await asyncio.wait_for(hub.link.connected.wait(), 5)
        async with linked_room(sim_room, broker.url) as (room, link):
            await asyncio.wait_for(link.connected.wait(), 5)
            linked = time.monotonic()

            async def seen() -> dict[str, Any] | None:
                answer = await hub.http.get(f"/api/v1/rooms/{ROOM}")
                body: dict[str, Any] = answer.json()
                return body if answer.status_code == 200 and body["revision"] else None

            body = await eventually(seen, timeout=1.0)
            assert time.monotonic() - linked < 1.0
            assert body["status"] == "online"
            assert "projector" in body["snapshot"]["devices"]
            listed = (await hub.http.get("/api/v1/rooms")).json()["rooms"]
            assert [r["id"] for r in listed] == [ROOM]

            # A change in the room: a higher revision reaches the hub, again within a second.
            first = body["revision"]
            await room.activate_scene("class-start", who="api", actor="test")
            changed = time.monotonic()

            async def newer() -> bool:
                answer = (await hub.http.get(f"/api/v1/rooms/{ROOM}")).json()
                return bool(answer["revision"] > first)

            await eventually(newer, timeout=1.0)
            assert time.monotonic() - changed < 1.0
            events = (await hub.http.get(f"/api/v1/rooms/{ROOM}")).json()["events"]
            seqs = [e["seq"] for e in events]
            assert seqs
            assert len(seqs) == len(set(seqs))  # each (room, seq) once
        # The room said goodbye: offline, last seen kept.
        gone = await eventually(lambda: _status(hub.http, "offline"))
        assert gone["last_seen"] > 0


async def _status(http: Any, want: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get(f"/api/v1/rooms/{ROOM}")).json()
    return body if body.get("status") == want else None


async def test_a_scene_command_through_the_hub_api_is_done_and_changes_the_room(
    sim_room: SimRoom, broker: Broker, hub_dir: Path
) -> None:
    async with (
        running_hub(broker, hub_dir) as hub,
        linked_room(sim_room, broker.url) as (room, link),
    ):
        await asyncio.wait_for(link.connected.wait(), 5)
        await eventually(lambda: _status(hub.http, "online"))
        body = {"action": "scene.activate", "args": {"scene": "class-start"}, "ttl_s": 300}
        found = await command_outcome(hub.http, ROOM, body)
        assert found["rooms"][ROOM]["status"] == "done", found
        assert found["action"] == "scene.activate"
        assert room.desired["projector"]["power"] == "on"
        runs = [e for e in await room.store.audit_tail() if e.action == "scene.activate"]
        assert [(e.who, e.actor) for e in runs] == [("hub", "operator:test-admin")]


async def test_an_already_expired_command_is_reported_expired_by_the_room_and_not_run(
    sim_room: SimRoom, broker: Broker, hub_dir: Path
) -> None:
    # A margin far past the test: the `expired` must be the room's own answer.
    async with (
        running_hub(broker, hub_dir, expiry_margin=3600) as hub,
        linked_room(sim_room, broker.url) as (room, link),
    ):
        await asyncio.wait_for(link.connected.wait(), 5)
        await asyncio.wait_for(hub.link.connected.wait(), 5)
        command_id = await hub.link.send_command(
            [ROOM], "scene.activate", {"scene": "class-start"}, "operator:test", ttl_s=-5
        )

        async def answered() -> dict[str, Any] | None:
            found = await hub.store.command(command_id)
            assert found is not None
            rooms: dict[str, Any] = found["rooms"]
            return found if rooms[ROOM]["result"] is not None else None

        found = await eventually(answered)
        assert found["rooms"][ROOM]["status"] == "expired"
        assert "passed" in found["rooms"][ROOM]["result"]["detail"]
        assert "projector" not in room.desired
        audit = await room.store.audit_tail()
        assert [e.result for e in audit if e.action == "scene.activate"] == ["expired"]


async def test_the_api_refuses_unknown_rooms_and_bad_bodies(broker: Broker, hub_dir: Path) -> None:
    async with running_hub(broker, hub_dir) as hub:
        body = {"action": "scene.activate", "args": {"scene": "class-start"}}
        missing = await hub.http.post(f"/api/v1/rooms/{ROOM}/commands", json=body)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        await hub.store.set_status(ROOM, "online", time.time())
        bad = await hub.http.post(
            f"/api/v1/rooms/{ROOM}/commands", json={"action": "projector.explode"}
        )
        assert bad.status_code == 422
        wildcard = await hub.http.get("/api/v1/rooms/baku/room+1")
        assert wildcard.status_code == 422
        unknown = await hub.http.get("/api/v1/commands/nope")
        assert unknown.status_code == 404
        assert (await hub.http.get("/api/v1/openapi.json")).status_code == 200


async def test_a_room_that_never_answers_is_marked_expired_by_the_hub_after_the_deadline(
    broker: Broker, hub_dir: Path
) -> None:
    async with running_hub(broker, hub_dir, expiry_margin=0.2) as hub:
        await asyncio.wait_for(hub.link.connected.wait(), 5)
        command_id = await hub.link.send_command(
            ["ganja/room-2"], "scene.activate", {"scene": "class-end"}, "operator:test", ttl_s=0.3
        )

        async def status() -> str | None:
            found = await hub.store.command(command_id)
            assert found is not None
            value: str = found["rooms"]["ganja/room-2"]["status"]
            return value if value not in ("queued", "delivered") else None

        # Published (the broker acknowledged it), then nothing from the room: expired.
        assert await eventually(status, timeout=3) == "expired"
