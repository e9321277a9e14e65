"""Guessing is limited and seen: unknown bearer tokens (room API, hub API, WebSocket) and wrong
technician PINs are counted, answered 429 with `Retry-After` past the limit, and audited (the
room) or logged (the hub)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.api.conftest import LOCAL, REMOTE, TOKENS, bearer, client_for, serving
from tests.api.test_contract import assert_problem
from tribune.api.attempts import MAX_FAILURES, WINDOW_S, FailedAttempts
from tribune.api.pin import hash_pin
from tribune.api.technician import MAX_FAILURES as MAX_PINS
from tribune.config import PanelSection
from tribune.hub import HubStore, HubSubscriber
from tribune.hub.api import create_hub_app
from tribune.hub.auth import create_operator
from tribune.room import Room

ROOM_URL = "/api/v1/room"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_slide_out_of_the_window_per_client() -> None:
    clock = Clock()
    attempts = FailedAttempts(limit=3, window_s=60, clock=clock)
    for i in range(3):
        assert attempts.retry_after("a") == 0
        assert attempts.failed("a") == i + 1
        clock.now += 10
    assert attempts.retry_after("a") == 30  # the first failure leaves the window at 1060
    assert attempts.retry_after("b") == 0  # per client
    clock.now += 30
    assert attempts.retry_after("a") == 0
    assert attempts.failed("a") == 3  # two still in the window, and this one


def test_memory_is_bounded_by_forgetting_the_least_recent_client() -> None:
    attempts = FailedAttempts(limit=1, max_clients=100)
    for i in range(1000):
        attempts.failed(f"10.0.{i // 256}.{i % 256}")
    assert attempts.retry_after("10.0.3.231") > 0  # the last one is remembered
    assert attempts.retry_after("10.0.0.0") == 0  # the first one was forgotten
    assert len(attempts._failures) == 100


async def _audit(room: Room, action: str) -> list[tuple[str, str]]:
    """(result, client) of the room's `action` audit entries, oldest first."""
    entries = [e for e in await room.store.audit_tail() if e.action == action]
    return [(e.result, e.detail.get("client", "")) for e in reversed(entries)]


async def test_unknown_tokens_lock_the_client_out_audited_and_logged(
    app: FastAPI, room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tribune.api.access")
    async with client_for(app, REMOTE) as remote, client_for(app, ("192.0.2.99", 1)) as other:
        for i in range(MAX_FAILURES):
            assert_problem(await remote.get(ROOM_URL, headers=bearer(f"guess-{i}")), 401)
        locked = await remote.get(ROOM_URL, headers=bearer(f"guess-{MAX_FAILURES}"))
        assert_problem(locked, 429, "try again in")
        assert 0 < int(locked.headers["Retry-After"]) <= WINDOW_S
        # Locked out, even the right token waits: the count does not reset on a success.
        assert_problem(await remote.get(ROOM_URL, headers=bearer(TOKENS.api)), 429)
        # Another address, and the panel on the lectern PC (no token), are not affected.
        assert (await other.get(ROOM_URL, headers=bearer(TOKENS.api))).status_code == 200
    async with client_for(app, LOCAL) as panel:
        assert (await panel.get(ROOM_URL)).status_code == 200
    # Audited twice per window (the first, the lock-out), not once per guess; logged each time.
    assert await _audit(room, "api.token") == [
        ("failed: unknown token", REMOTE[0]),
        (f"refused: {MAX_FAILURES} unknown tokens; locked out for {WINDOW_S} s", REMOTE[0]),
    ]
    warnings = [r.getMessage() for r in caplog.records if "unknown bearer token" in r.getMessage()]
    assert len(warnings) == MAX_FAILURES
    assert REMOTE[0] in warnings[0]


async def test_websocket_tokens_count_too(app: FastAPI) -> None:
    async with serving(app) as port:
        url = f"ws://127.0.0.1:{port}/api/v1/ws"
        for i in range(MAX_FAILURES):
            with pytest.raises(InvalidStatus):
                async with connect(f"{url}?token=guess-{i}"):
                    pass
        with pytest.raises(InvalidStatus):
            async with connect(f"{url}?token={TOKENS.api}"):
                pass
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert_problem(await http.get(ROOM_URL, headers=bearer(TOKENS.api)), 429)
            assert (await http.get(ROOM_URL)).status_code == 200  # the panel, without a token


async def test_wrong_pins_are_locked_out_and_every_try_is_audited(app: FastAPI, room: Room) -> None:
    room.config = room.config.model_copy(
        update={"panel": PanelSection(technician_pin=hash_pin("4821", iterations=1000))}
    )
    url = "/api/v1/technician/session"
    async with client_for(app, LOCAL) as panel:
        for left in range(MAX_PINS - 1, -1, -1):
            wrong = await panel.post(url, json={"pin": "0000"})
            assert_problem(wrong, 401, f"{left} of {MAX_PINS} tries left")
        locked = await panel.post(url, json={"pin": "4821"})  # the right one, too late
        assert_problem(locked, 429, "try again in")
        assert int(locked.headers["Retry-After"]) > 0
    results = [result for result, _ in await _audit(room, "technician.session")]
    assert results == ["failed: wrong PIN"] * MAX_PINS + ["refused: too many wrong PINs"]


@pytest.fixture
async def hub_app(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, str]]:
    store = HubStore(tmp_path / "hub.db")
    await store.open()
    token = await create_operator(store, "admin-1", "admin")
    yield create_hub_app(HubSubscriber(store, "127.0.0.1", 1)), token
    await store.close()


async def test_the_hub_locks_out_unknown_operator_tokens_and_logs_them(
    hub_app: tuple[FastAPI, str], caplog: pytest.LogCaptureFixture
) -> None:
    app, token = hub_app
    caplog.set_level(logging.WARNING, logger="tribune.hub.api")
    async with client_for(app, REMOTE) as remote, client_for(app, ("192.0.2.99", 1)) as other:
        for i in range(MAX_FAILURES):
            assert_problem(await remote.get("/api/v1/me", headers=bearer(f"thub_{i}")), 401)
        locked = await remote.get("/api/v1/me", headers=bearer(token))
        assert_problem(locked, 429, "try again in")
        assert 0 < int(locked.headers["Retry-After"]) <= WINDOW_S
        assert (await other.get("/api/v1/me", headers=bearer(token))).status_code == 200
        # No token at all is not a guess: still a plain 401.
        assert_problem(await remote.get("/api/v1/me"), 401)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unknown token from 192.0.2.10" in m for m in messages) == MAX_FAILURES
    assert any("192.0.2.10 locked out" in m for m in messages)


def test_the_lock_out_is_documented_in_both_openapi_documents(
    app: FastAPI, hub_app: tuple[FastAPI, str]
) -> None:
    for name, document in (("room", app.openapi()), ("hub", hub_app[0].openapi())):
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                assert "429" in operation["responses"], f"{name}: {method.upper()} {path}"
