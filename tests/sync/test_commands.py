"""Hub commands through a real broker: once per id, refused after the deadline, malformed."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.room.conftest import SimRoom
from tests.sync.conftest import Broker, Listener, linked_room, listening, publish
from tribune.sync.topics import iso

BASE = "tribune/v1/baku/room-1"


def command(cid: str, action: str, args: dict[str, Any], *, ttl: float = 86400) -> bytes:
    deadline = datetime.now(UTC) + timedelta(seconds=ttl)
    body = {
        "id": cid,
        "action": action,
        "args": args,
        "issued_by": "operator-1",
        "deadline": iso(deadline),
    }
    return json.dumps(body).encode()


def expiring(seconds: int) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = seconds
    return props


def results(seen: Listener, cid: str | None = None) -> list[dict[str, Any]]:
    return [r for r in seen.on("result") if cid is None or r["id"] == cid]


async def test_a_command_delivered_twice_runs_once_and_both_get_the_result(
    sim_room: SimRoom, broker: Broker
) -> None:
    async with (
        linked_room(sim_room, broker.url) as (room, link),
        listening(broker.port, f"{BASE}/cmd/result") as seen,
    ):
        await asyncio.wait_for(link.connected.wait(), 5)
        payload = command("c-1", "scene.activate", {"scene": "class-start"})
        await publish(broker.port, f"{BASE}/cmd", payload, properties=expiring(60))
        await seen.wait_for(lambda: len(results(seen, "c-1")) == 1)
        await publish(broker.port, f"{BASE}/cmd", payload, properties=expiring(60))
        await seen.wait_for(lambda: len(results(seen, "c-1")) == 2)
        first, second = results(seen, "c-1")
        assert first["status"] == "done"
        assert second == first  # the stored result, not a second run
        audit = await room.store.audit_tail()
        runs = [e for e in audit if e.action == "scene.activate"]
        assert len(runs) == 1
        assert (runs[0].who, runs[0].actor) == ("hub", "operator-1")
        assert room.desired["projector"]["power"] == "on"


async def test_an_expired_command_is_not_run_and_is_reported_expired(
    sim_room: SimRoom, broker: Broker
) -> None:
    async with (
        linked_room(sim_room, broker.url) as (room, link),
        listening(broker.port, f"{BASE}/cmd/result") as seen,
    ):
        await asyncio.wait_for(link.connected.wait(), 5)
        # Queued during an outage, delivered after its deadline: never a late run.
        payload = command("late-1", "scene.activate", {"scene": "class-start"}, ttl=-5)
        await publish(broker.port, f"{BASE}/cmd", payload)
        await seen.wait_for(lambda: results(seen, "late-1"))
        assert results(seen, "late-1")[0]["status"] == "expired"
        assert "projector" not in room.desired
        audit = await room.store.audit_tail()
        assert [e.result for e in audit if e.action == "scene.activate"] == ["expired"]


async def test_a_command_waiting_at_the_broker_while_the_room_is_offline_expires(
    sim_room: SimRoom, broker: Broker
) -> None:
    async with linked_room(sim_room, broker.url) as (_, link):
        await asyncio.wait_for(link.connected.wait(), 5)  # the session (subscription) exists
    payload = command("night-1", "scene.activate", {"scene": "class-start"}, ttl=0.5)
    await publish(broker.port, f"{BASE}/cmd", payload, properties=expiring(30))
    await asyncio.sleep(1.0)
    async with (
        listening(broker.port, f"{BASE}/cmd/result") as seen,
        linked_room(sim_room, broker.url) as (room, link),
    ):
        await seen.wait_for(lambda: results(seen, "night-1"))
        assert results(seen, "night-1")[0]["status"] == "expired"
        assert "projector" not in room.desired


MALFORMED = [
    pytest.param(b"{not json", id="bad-json"),
    pytest.param(b"[1, 2]", id="not-object"),
    pytest.param(b'{"id": "x+1", "action": "scene.activate"}', id="wildcard-plus"),
    pytest.param(b'{"id": "x#", "action": "scene.activate"}', id="wildcard-hash"),
    pytest.param(b'{"id": "a/b", "action": "scene.activate"}', id="slash"),
    pytest.param(b'{"id": 7, "action": "scene.activate"}', id="id-type"),
    pytest.param(command("m-1", "power.everything", {}), id="unknown-action"),
    pytest.param(command("m-2", "scene.activate", {"scene": 5}), id="arg-type"),
    pytest.param(command("m-3", "scene.activate", {"scene": "disco"}), id="no-such-scene"),
    pytest.param(
        command("m-4", "desired.patch", {"desired": {"projector": {"power": "maybe"}}}),
        id="bad-value",
    ),
    pytest.param(command("m-5", "desired.patch", {"desired": "on"}), id="patch-type"),
    pytest.param(
        command("m-6", "device.action", {"device": "toaster", "action": "x"}), id="no-device"
    ),
    pytest.param(command("m-7", "schedule.set", {"entries": [{"id": "x"}]}), id="schedule"),
    pytest.param(
        b'{"id": "m-8", "action": "scene.activate", "args": [], "issued_by": "o",'
        b' "deadline": "2099-01-01T00:00:00Z"}',
        id="args-type",
    ),
    pytest.param(
        b'{"id": "m-9", "action": "scene.activate", "args": {}, "issued_by": "o",'
        b' "deadline": "tomorrow"}',
        id="deadline",
    ),
    pytest.param(
        b'{"id": "m-10", "action": "scene.activate", "args": {}, "issued_by": "o",'
        b' "deadline": "2099-01-01T00:00:00Z", "room": "ganja/room-2"}',
        id="wrong-room",
    ),
    pytest.param(b'{"id": "big", "pad": "' + b"x" * 70_000 + b'"}', id="huge"),
]


async def test_malformed_commands_get_failed_and_change_nothing(
    sim_room: SimRoom, broker: Broker
) -> None:
    async with (
        linked_room(sim_room, broker.url) as (room, link),
        listening(broker.port, f"{BASE}/cmd/result") as seen,
    ):
        await asyncio.wait_for(link.connected.wait(), 5)
        before = json.dumps(room.desired, sort_keys=True)
        for param in MALFORMED:
            (payload,) = param.values
            assert isinstance(payload, bytes)
            await publish(broker.port, f"{BASE}/cmd", payload)
        await seen.wait_for(lambda: len(results(seen)) >= len(MALFORMED), timeout=10)
        statuses = [r["status"] for r in results(seen)]
        assert statuses == ["failed"] * len(MALFORMED), results(seen)
        assert all(r["detail"] for r in results(seen))
        assert json.dumps(room.desired, sort_keys=True) == before
        # The link is still up and a good command still runs.
        good = command("ok-1", "desired.patch", {"desired": {"projector": {"power": "on"}}})
        await publish(broker.port, f"{BASE}/cmd", good)
        await seen.wait_for(lambda: results(seen, "ok-1"))
        assert results(seen, "ok-1")[0]["status"] == "done"


async def test_a_command_not_yet_recorded_when_the_link_stops_comes_again_and_runs_once(
    sim_room: SimRoom, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The room acknowledges a command only once its id is stored: one that arrived but was
    still waiting when the service stopped is not lost — the broker sends it again."""
    from tests.sync.conftest import sync_settings
    from tribune.sync import SyncClient
    from tribune.sync.commands import CommandRunner

    room = await sim_room.make()
    await room.start()
    held = asyncio.Event()
    original = CommandRunner.handle

    async def stuck(self: CommandRunner, payload: bytes, recorded: Any = None) -> Any:
        held.set()
        await asyncio.Event().wait()  # never records it: the service stops first
        return await original(self, payload, recorded)

    try:
        async with listening(broker.port, f"{BASE}/cmd/result") as seen:
            monkeypatch.setattr(CommandRunner, "handle", stuck)
            link = SyncClient(room, sync_settings(broker.url), base_dir=sim_room.data_dir)
            await link.start()
            await asyncio.wait_for(link.connected.wait(), 5)
            payload = command("c-held", "scene.activate", {"scene": "class-start"})
            await publish(broker.port, f"{BASE}/cmd", payload, properties=expiring(60))
            await asyncio.wait_for(held.wait(), 5)
            await link.stop()

            monkeypatch.setattr(CommandRunner, "handle", original)
            again = SyncClient(room, sync_settings(broker.url), base_dir=sim_room.data_dir)
            await again.start()
            try:
                await seen.wait_for(lambda: len(results(seen, "c-held")) == 1)
                assert results(seen, "c-held")[0]["status"] == "done"
                await asyncio.sleep(0.5)
                assert len(results(seen, "c-held")) == 1
            finally:
                await again.stop()
        audit = await room.store.audit_tail()
        assert [e.actor for e in audit if e.action == "scene.activate"] == ["operator-1"]
    finally:
        await room.stop()
        await room.store.close()
