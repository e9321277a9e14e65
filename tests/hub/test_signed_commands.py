"""Signed hub commands through a real Mosquitto: a room holding the hub's key runs what the hub
sent and refuses what anyone else with the broker publishes on its `cmd` topic."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.hub.conftest import running_hub
from tests.hub.test_hub import command_outcome
from tests.room.conftest import SimRoom
from tests.sync.conftest import Broker, linked_room, listening, publish
from tribune.hub.publisher import Publisher
from tribune.sync.topics import iso

ROOM = "baku/room-1"
BASE = f"tribune/v1/{ROOM}"


async def test_the_hubs_signed_command_runs_and_one_forged_on_the_broker_does_not(
    sim_room: SimRoom, broker: Broker, tmp_path: Path
) -> None:
    publisher = Publisher.load_or_create(tmp_path / "hub")
    (sim_room.data_dir / "hub.pem").write_text(publisher.public_pem())
    async with (
        running_hub(broker, tmp_path / "hub", publisher=publisher) as hub,
        linked_room(sim_room, broker.url, hub_key_file="hub.pem") as (room, link),
        listening(broker.port, f"{BASE}/cmd/#") as seen,
    ):
        await asyncio.wait_for(link.connected.wait(), 5)

        # Whoever holds the broker: a well-formed command for this room, without the signature.
        forged = {
            "id": "forged-1",
            "action": "scene.activate",
            "args": {"scene": "class-start"},
            "issued_by": "operator:admin",
            "deadline": iso(datetime.now(UTC) + timedelta(minutes=5)),
            "room": ROOM,
        }
        await publish(broker.port, f"{BASE}/cmd", json.dumps(forged))

        def answered(cid: str) -> list[dict[str, Any]]:
            return [p for t, p, _ in seen.messages if t == f"{BASE}/cmd/result" and p["id"] == cid]

        await seen.wait_for(lambda: answered("forged-1"))
        assert answered("forged-1")[0]["status"] == "failed"
        assert "not signed" in answered("forged-1")[0]["detail"]
        assert "projector" not in room.desired
        assert [e for e in await room.store.audit_tail() if e.action == "scene.activate"] == []

        body = {"action": "scene.activate", "args": {"scene": "class-start"}, "ttl_s": 300}
        found = await command_outcome(hub.http, ROOM, body)
        command_id = found["id"]
        assert found["rooms"][ROOM]["status"] == "done", found
        assert room.desired["projector"]["power"] == "on"
        sent = [p for t, p, _ in seen.messages if t == f"{BASE}/cmd" and p["id"] == command_id]
        assert sent
        assert isinstance(sent[0]["signature"], str)

        # The same signed command with its scene changed on the way: refused.
        altered = {**sent[0], "id": "altered-1", "args": {"scene": "class-end"}}
        await publish(broker.port, f"{BASE}/cmd", json.dumps(altered))
        await seen.wait_for(lambda: answered("altered-1"))
        assert answered("altered-1")[0]["status"] == "failed"
        assert "not the hub's" in answered("altered-1")[0]["detail"]
        assert room.desired["projector"]["power"] == "on"
