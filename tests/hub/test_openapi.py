"""Schemathesis over the hub's OpenAPI document: no 5xx for anything it sends, answers match
the schema; with an admin's token, so every operation is reachable.

As tests/api/test_openapi.py does for the room: the hub (store, API, no broker: commands stay
`queued`) and uvicorn run on their own event loop in a thread, and each operation's cases come
from `operation.as_strategy()` (schemathesis's pytest plugin does not run under pytest 9). The
store holds rooms, an alert, a help request and a command, so real ids are in reach.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import serving
from tests.strategies import json_values, published_operations
from tribune.hub import HubStore, HubSubscriber
from tribune.hub.api import create_hub_app
from tribune.hub.auth import create_operator
from tribune.hub.store import Incoming
from tribune.profiles.loader import shipped_profiles_dir

EXAMPLES = 100
ROOMS = ["baku/room-1", "baku/room-2", "ganja/room-1"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


@dataclass
class ServedHub:
    """A hub API on a real socket, an admin's token and real ids from its store."""

    url: str
    token: str
    ids: dict[str, str]


async def _seed(store: HubStore) -> dict[str, str]:
    now = time.time()
    at = "2026-11-26T08:00:00.000Z"
    for room in ROOMS:
        await store.set_status(room, "online", now)
    alert = {"code": "device.offline", "device": "projector", "active": True}
    help_entry = {"id": 41, "at": at, "who": "panel", "actor": None, "detail": {"note": "x"}}
    alert_event = {"seq": 1, "type": "alert", "at": at, "data": alert}
    help_event = {"seq": 2, "type": "help", "at": at, "data": help_entry}
    await store.take_in(
        [
            Incoming("event", ROOMS[0], alert_event, now),
            Incoming("event", ROOMS[0], help_event, now),
        ]
    )
    alerts = await store.alerts("all")
    await create_operator(store, "someone", "viewer")
    return {"alert_id": str(alerts[0]["id"]), "site": "baku", "room": "room-1", "name": "someone"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedHub]:
    folder: Path = tmp_path_factory.mktemp("hub-openapi")
    ready = threading.Event()
    found: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        store = HubStore(folder / "hub.db")
        await store.open()
        try:
            link = HubSubscriber(store, "127.0.0.1", 1)  # never started: commands stay queued
            token = await create_operator(store, "fuzz-admin", "admin")
            ids = await _seed(store)
            ids["command_id"] = await link.send_command(
                [ROOMS[0]], "scene.activate", {"scene": "class-end"}, "operator:seed", 60
            )
            async with serving(create_hub_app(link)) as port:
                found["served"] = ServedHub(f"http://127.0.0.1:{port}", token, ids)
                ready.set()
                await stop.wait()
        except BaseException as exc:
            found["error"] = exc
            ready.set()
            raise
        finally:
            await store.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "the hub did not start"
        assert "error" not in found, f"the hub did not start: {found.get('error')!r}"
        yield found["served"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()


@pytest.fixture(scope="module")
def api_schema(served: ServedHub) -> Any:
    return schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json")


# (method, path, real path parameters to mix in, so generated cases also reach real records)
OPERATIONS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/api/v1/me", {}),
    ("GET", "/api/v1/rooms", {}),
    ("GET", "/api/v1/rooms/{site}/{room}", {"site": "baku", "room": "room-1"}),
    ("GET", "/api/v1/rooms/{site}/{room}/events", {"site": "baku", "room": "room-1"}),
    ("POST", "/api/v1/rooms/{site}/{room}/commands", {"site": "baku", "room": "room-1"}),
    ("POST", "/api/v1/commands", {}),
    ("GET", "/api/v1/commands", {}),
    ("GET", "/api/v1/commands/{command_id}", {"command_id": "command_id"}),
    ("GET", "/api/v1/alerts", {}),
    ("POST", "/api/v1/alerts/{alert_id}/ack", {"alert_id": "alert_id"}),
    ("GET", "/api/v1/help-requests", {}),
    (
        "POST",
        "/api/v1/help-requests/{site}/{room}/{request_id}/ack",
        {"site": "baku", "room": "room-1", "request_id": "41"},
    ),
    ("GET", "/api/v1/operators", {}),
    ("POST", "/api/v1/operators", {}),
    ("DELETE", "/api/v1/operators/{name}", {"name": "name"}),
]


def test_every_operation_is_exercised(api_schema: Any) -> None:
    published = published_operations(api_schema)
    assert published == {(method, path) for method, path, _ in OPERATIONS}


JSON = json_values()
PROFILE = (shipped_profiles_dir() / "switcher" / "extron-sis.yaml").read_text(encoding="utf-8")


def real_commands() -> st.SearchStrategy[dict[str, Any]]:
    """Command bodies with a real action (the schema only says `string`) and any arguments;
    profile pushes with a real profile, a broken one or a hostile one among them."""
    push_args = st.fixed_dictionaries(
        {"profile": st.sampled_from([PROFILE, PROFILE.replace("id:", "idd:"), "a: &a [*a]"])},
        optional={"device": JSON, "model": JSON, "force": JSON, "filename": JSON, "x": JSON},
    )
    return st.one_of(
        st.fixed_dictionaries(
            {
                "action": st.sampled_from(
                    ["scene.activate", "desired.patch", "device.action", "schedule.set"]
                ),
                "args": st.dictionaries(st.text(max_size=8), JSON, max_size=3),
            },
            optional={"ttl_s": st.floats(min_value=0.001, max_value=600)},
        ),
        st.fixed_dictionaries({"action": st.just("profile.push"), "args": push_args | JSON}),
    )


@pytest.mark.parametrize(
    ("method", "path", "real"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_operation_conforms(
    api_schema: Any, served: ServedHub, method: str, path: str, real: dict[str, str]
) -> None:
    operation = api_schema[path][method]
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    params = {key: served.ids.get(value, value) for key, value in real.items()}
    if params:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=params))
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=params))
    if path.endswith("/commands") and method == "POST":
        single = real_commands()
        if path == "/api/v1/commands":
            selector = st.sampled_from([{"site": "baku"}, {"rooms": ROOMS[:2]}, {"all": True}])
            single = st.builds(lambda body, s: {**body, "selector": s}, single, selector)
        strategies.append(
            single.flatmap(
                lambda body: operation.as_strategy(body=body, path_parameters=params or None)
            )
        )

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        headers = {"Authorization": f"Bearer {served.token}"}
        case.call_and_validate(base_url=served.url, headers=headers, checks=CHECKS, timeout=20)

    check()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/alerts/6641893360720100196352/ack"),
        ("POST", "/api/v1/help-requests/baku/room-1/34418590094081138688/ack"),
        ("GET", "/api/v1/rooms/baku/room-1/events?before=34418590094081138688"),
    ],
)
def test_an_id_past_64_bits_is_refused_not_a_crash(
    served: ServedHub, method: str, path: str
) -> None:
    """These were 500s (SQLite cannot bind the number) before the API bounded them."""
    headers = {"Authorization": f"Bearer {served.token}"}
    answer = httpx.request(method, served.url + path, headers=headers, timeout=10)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
