"""`/api/v1/ws` over a real uvicorn socket: numbered events, resume without a gap, snapshots."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.api.conftest import TOKENS, serving, until
from tribune.room import Room


@pytest.fixture
async def port(app: FastAPI) -> AsyncIterator[int]:
    async with serving(app) as bound:
        yield bound


async def receive(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    """The next message, decoded."""
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def events_until(ws: ClientConnection, seq: int) -> list[dict[str, Any]]:
    """Messages until one with sequence number `seq` or beyond."""
    messages: list[dict[str, Any]] = []
    while not messages or messages[-1]["seq"] < seq:
        messages.append(await receive(ws))
    return messages


async def test_a_new_client_gets_a_snapshot_then_numbered_events(port: int, room: Room) -> None:
    async with connect(f"ws://127.0.0.1:{port}/api/v1/ws") as ws:
        first = await receive(ws)
        assert first["type"] == "snapshot"
        assert first["seq"] == first["room"]["seq"]
        assert set(first["room"]["devices"]) == {"projector", "board", "switcher"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            response = await http.post("/api/v1/scenes/class-start/activate")
            assert response.status_code == 202
        await until(lambda: room.converged)
        messages = await events_until(ws, room.bus.seq)
    assert all(m["type"] == "event" for m in messages)
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(first["seq"] + 1, first["seq"] + 1 + len(seqs))), "no gap"
    kinds = {m["kind"] for m in messages}
    assert {"audit", "device", "status", "room"} <= kinds
    audit = next(m for m in messages if m["kind"] == "audit")
    assert audit["data"]["who"] == "panel"
    assert any(m["kind"] == "room" and m["data"].get("converged") is True for m in messages)


async def test_reconnecting_with_since_resumes_without_a_gap(port: int, room: Room) -> None:
    url = f"ws://127.0.0.1:{port}/api/v1/ws"
    async with connect(url) as ws:
        snapshot = await receive(ws)
        await room.apply({"board": {"power": "on"}}, who="panel")
        seen = await events_until(ws, room.bus.seq)
    last = seen[-1]["seq"]
    # Things happen while the client is away.
    await room.activate_scene("class-start", who="schedule", actor="morning")
    await until(lambda: room.converged)
    missed_until = room.bus.seq
    assert missed_until > last
    async with connect(f"{url}?since={last}&epoch={snapshot['epoch']}") as ws:
        resumed = await events_until(ws, missed_until)
        await room.apply({"board": {"power": "off"}}, who="panel")
        live = await events_until(ws, room.bus.seq)
    assert all(m["type"] == "event" for m in resumed + live)
    seqs = [m["seq"] for m in resumed + live]
    assert seqs == list(range(last + 1, last + 1 + len(seqs)))
    history = room.bus.since(last)
    assert history is not None
    assert resumed == [json.loads(kept.text) for kept in history[: len(resumed)]]


async def test_a_too_old_since_gets_a_snapshot(port: int, room: Room) -> None:
    for i in range(2100):  # more than the bus keeps
        room.bus.publish("test", {"i": i})
    async with connect(f"ws://127.0.0.1:{port}/api/v1/ws?since=1") as ws:
        first = await receive(ws)
    assert first["type"] == "snapshot"
    assert first["seq"] == room.bus.seq


async def test_a_since_from_another_run_gets_a_snapshot(port: int, room: Room) -> None:
    url = f"ws://127.0.0.1:{port}/api/v1/ws"
    async with connect(f"{url}?since=0&epoch=0123456789abcdef") as ws:
        assert (await receive(ws))["type"] == "snapshot"
    async with connect(f"{url}?since={room.bus.seq + 100}") as ws:
        assert (await receive(ws))["type"] == "snapshot"


async def test_a_lagging_client_gets_a_fresh_snapshot(port: int, room: Room) -> None:
    async with connect(f"ws://127.0.0.1:{port}/api/v1/ws") as ws:
        assert (await receive(ws))["type"] == "snapshot"
        for i in range(1500):  # in one go: more than a subscriber's queue holds
            room.bus.publish("test", {"i": i})
        message = await receive(ws)
        while message["type"] == "event":
            message = await receive(ws)
        assert message["type"] == "snapshot"
        assert message["seq"] == room.bus.seq
        room.bus.publish("test", {"after": True})
        after = await receive(ws)
    assert (after["type"], after["seq"], after["data"]) == ("event", room.bus.seq, {"after": True})


async def test_the_websocket_is_refused_to_foreign_origins_and_hosts(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/api/v1/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        async with connect(url, additional_headers={"Host": "evil.example"}):
            pass
    async with connect(url, origin=f"http://127.0.0.1:{port}") as ws:  # type: ignore[arg-type]
        assert (await receive(ws))["type"] == "snapshot"


async def test_a_websocket_token_goes_in_the_query_and_must_be_right(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/api/v1/ws"
    with pytest.raises(InvalidStatus):
        async with connect(f"{url}?token=guess"):
            pass
    async with connect(f"{url}?token={TOKENS.api}") as ws:
        assert (await receive(ws))["type"] == "snapshot"
