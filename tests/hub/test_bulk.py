"""Bulk `class-end` to every room of a centre through the hub API, with a real Mosquitto and
real rooms (each on its own simulated PJLink projector): `done` per linked room; a room offline
through the deadline is `expired` and, back later, never runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from tests.hub.conftest import running_hub
from tests.hub.test_hub import eventually
from tests.room.conftest import SPEED, quick
from tests.sync.conftest import Broker, sync_settings
from tribune.config import parse_config
from tribune.drivers.runtime import DeviceRuntime
from tribune.profiles.loader import ProfileLoader
from tribune.room import Room
from tribune.sim import start_simulator
from tribune.store import Store
from tribune.sync import SyncClient

ROOM_TOML = """
[room]
id = "{room_id}"
name = "{room_id}"

[devices.projector]
profile = "pjlink"
port = "tcp://127.0.0.1:{port}"

[scenes.class-start]
label = {{ az = "Dərsə başla", en = "Start class", ru = "Начать занятие" }}
desired = {{ projector = {{ power = "on" }} }}

[scenes.class-end]
label = {{ az = "Dərsi bitir", en = "End class", ru = "Завершить занятие" }}
desired = {{ projector = {{ power = "off" }} }}
"""

BAKU = ["baku/room-1", "baku/room-2", "baku/studio"]


@asynccontextmanager
async def small_room(room_id: str, folder: Path) -> AsyncIterator[Room]:
    """A started room with one simulated PJLink projector."""
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=SPEED) as sim:
        config = parse_config(ROOM_TOML.format(room_id=room_id, port=sim.port), "room.toml")
        store = Store(folder / "tribune.db")
        await store.open()
        profile = quick(ProfileLoader().load("pjlink").profile)
        runtime = DeviceRuntime("projector", profile, f"tcp://127.0.0.1:{sim.port}")
        room = Room(config, store, runtimes={"projector": runtime})
        await room.start()
        try:
            yield room
        finally:
            await room.stop()
            await store.close()


async def _link(room: Room, broker: Broker, folder: Path) -> SyncClient:
    link = SyncClient(room, sync_settings(broker.url), base_dir=folder)
    await link.start()
    await asyncio.wait_for(link.connected.wait(), 10)
    return link


async def test_bulk_class_end_to_a_centre_is_done_per_room_and_expired_for_an_offline_one(
    broker: Broker, tmp_path: Path
) -> None:
    hub_dir = tmp_path / "hub"
    async with running_hub(broker, hub_dir, expiry_margin=0.5) as hub, AsyncExitStack() as stack:
        await asyncio.wait_for(hub.link.connected.wait(), 5)
        rooms: dict[str, Room] = {}
        links: dict[str, SyncClient] = {}
        for room_id in [*BAKU, "ganja/room-1"]:
            folder = tmp_path / room_id.replace("/", "-")
            folder.mkdir()
            rooms[room_id] = await stack.enter_async_context(small_room(room_id, folder))
            links[room_id] = await _link(rooms[room_id], broker, folder)
            await rooms[room_id].activate_scene("class-start", who="api", actor="test")

        async def all_seen() -> bool:
            listed = (await hub.http.get("/api/v1/rooms")).json()["rooms"]
            return {r["id"] for r in listed if r["status"] == "online"} == set(rooms)

        await eventually(all_seen, timeout=10)

        # The studio's PC loses its link (its session, and so its queue, stays at the broker).
        await links["baku/studio"].stop()

        async def studio_offline() -> bool:
            room = (await hub.http.get("/api/v1/rooms/baku/studio")).json()
            return bool(room["status"] == "offline")

        await eventually(studio_offline)

        body = {
            "action": "scene.activate",
            "args": {"scene": "class-end"},
            "ttl_s": 2,
            "selector": {"site": "baku"},
        }
        sent = await hub.http.post("/api/v1/commands", json=body)
        assert sent.status_code == 202
        command_id = sent.json()["id"]
        assert sent.json()["rooms"] == sorted(BAKU)

        async def statuses(final: bool) -> dict[str, str] | None:
            found = (await hub.http.get(f"/api/v1/commands/{command_id}")).json()
            now = {room: entry["status"] for room, entry in found["rooms"].items()}
            open_ = [s for s in now.values() if s in ("queued", "delivered")]
            return now if (not open_ if final else True) else None

        linked = {"baku/room-1": "done", "baku/room-2": "done"}

        async def linked_done() -> bool:
            now = await statuses(final=False)
            assert now is not None
            return all(now[room] == want for room, want in linked.items())

        await eventually(linked_done, timeout=5)
        for room_id in linked:
            assert rooms[room_id].desired["projector"]["power"] == "off"
        # Not in the selection: untouched.
        assert rooms["ganja/room-1"].desired["projector"]["power"] == "on"

        final = await eventually(lambda: statuses(final=True), timeout=8)
        assert final == {**linked, "baku/studio": "expired"}

        # Back after the deadline: the studio never runs the stale class-end.
        studio = rooms["baku/studio"]
        links["baku/studio"] = await _link(studio, broker, tmp_path / "baku-studio")
        await asyncio.sleep(1.0)
        assert studio.desired["projector"]["power"] == "on"
        # The broker drops the message once its expiry passes (a second's granularity): if it
        # still hands it over, the room refuses it as expired. Either way it is not run.
        audit = await studio.store.audit_tail()
        from_hub = [e.result for e in audit if e.action == "scene.activate" and e.who == "hub"]
        assert from_hub in ([], ["expired"])
        after: Any = (await hub.http.get(f"/api/v1/commands/{command_id}")).json()
        assert after["rooms"]["baku/studio"]["status"] == "expired"
        for link in links.values():
            await link.stop()
