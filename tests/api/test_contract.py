"""The API's contract: shapes, statuses and who the audit log names, over the simulated room."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import LOCAL, REMOTE, TOKENS, Simulated, bearer, client_for, until
from tribune.api import create_app
from tribune.room import Room

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, detail: str = "") -> dict[str, Any]:
    """The response is problem+json with `status` and a detail containing `detail`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert detail in body["detail"]
    return body


async def test_room_lists_devices_with_reported_and_desired_state(
    local: httpx.AsyncClient, room: Room
) -> None:
    await until(lambda: "power" in room.runtimes["projector"].state)
    response = await local.get("/api/v1/room")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "baku/room-1"
    assert isinstance(body["converged"], bool)
    assert set(body["devices"]) == {"projector", "board", "switcher"}
    projector = body["devices"]["projector"]
    assert set(projector) >= {"online", "health", "reported", "desired", "capabilities", "status"}
    assert projector["online"] is True
    assert projector["health"]["status"] == "online"
    assert projector["reported"]["power"]["value"] in ("off", "standby")
    assert "power" in projector["capabilities"]
    # The room's extras are kept.
    assert body["name"] == "Test room"
    assert isinstance(body["seq"], int)


async def test_scene_activation_converges_and_is_audited_as_the_panel(
    local: httpx.AsyncClient, room: Room
) -> None:
    response = await local.post("/api/v1/scenes/class-start/activate")
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["converged"] is False
    assert accepted["status"]["projector"]["power"] == "pending"
    await until(lambda: room.converged)
    room_body = (await local.get("/api/v1/room")).json()
    assert room_body["converged"] is True
    assert room_body["source"] == "lectern-pc"
    assert room_body["devices"]["projector"]["reported"]["power"]["value"] == "on"
    assert set(room_body["devices"]["projector"]["status"].values()) == {"converged"}

    audit = (await local.get("/api/v1/audit", params={"limit": 5})).json()["entries"]
    entry = next(e for e in audit if e["id"] == accepted["audit_id"])
    assert (entry["who"], entry["actor"], entry["action"]) == ("panel", None, "scene.activate")
    assert entry["detail"] == {"scene": "class-start"}


async def test_patch_desired_is_accepted_with_its_audit_id(
    local: httpx.AsyncClient, room: Room
) -> None:
    response = await local.patch("/api/v1/room/desired", json={"board": {"power": "on"}})
    assert response.status_code == 202
    body = response.json()
    assert body["status"]["board"] == {"power": "pending"}
    assert room.desired["board"] == {"power": "on"}
    await until(lambda: room.converged)
    entries = (await local.get("/api/v1/audit")).json()["entries"]
    assert entries[0]["id"] == body["audit_id"]
    assert entries[0]["detail"] == {"desired": {"board": {"power": "on"}}}


async def test_bad_patches_are_problems_with_a_reason(local: httpx.AsyncClient) -> None:
    url = "/api/v1/room/desired"
    body = assert_problem(
        await local.patch(url, json={"projector": {"input": "hdmi9"}}), 422, "not one of"
    )
    assert body["type"].endswith("not-supported")
    assert_problem(await local.patch(url, json={"projector": {"lamp_hours": 5}}), 422, "read-only")
    assert_problem(await local.patch(url, json={"toaster": {"power": "on"}}), 404, "toaster")
    assert_problem(await local.patch(url, json={"projector": {"warp": 9}}), 422, "warp")
    assert_problem(await local.patch(url, json={"projector": {"power": [1, {}]}}), 422)
    assert_problem(await local.patch(url, json={"projector": "on"}), 422)
    assert_problem(await local.patch(url, json={}), 422)
    malformed = await local.patch(
        url, content=b'{"projector": {', headers={"Content-Type": "application/json"}
    )
    assert_problem(malformed, 422, "JSON")


async def test_actions_run_and_are_audited(local: httpx.AsyncClient, room: Room) -> None:
    # The board takes commands other than power only when on: refused is 502.
    refused = await local.post("/api/v1/devices/board/actions/volume_up")
    assert_problem(refused, 502, "invalid cmd")
    await local.patch("/api/v1/room/desired", json={"board": {"power": "on"}})
    await until(lambda: room.converged)
    response = await local.post("/api/v1/devices/board/actions/volume_up")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "audit_id": body["audit_id"],
        "device": "board",
        "action": "volume_up",
        "result": "done",
    }
    entries = (await local.get("/api/v1/audit", params={"limit": 1})).json()["entries"]
    assert entries[0]["action"] == "device.action"
    assert entries[0]["result"] == "done"
    assert_problem(await local.post("/api/v1/devices/board/actions/launch"), 404, "launch")
    assert_problem(await local.post("/api/v1/devices/toaster/actions/volume_up"), 404, "toaster")
    assert_problem(
        await local.post("/api/v1/devices/board/actions/volume_up", json=["not", "an", "object"]),
        422,
    )


async def test_an_action_on_an_unplugged_device_is_504(
    local: httpx.AsyncClient, simulated: Simulated
) -> None:
    simulated.sims["board"].unplug()
    await until(lambda: simulated.room.runtimes["board"].health.status.value == "offline")
    response = await local.post("/api/v1/devices/board/actions/volume_up")
    assert_problem(response, 504)
    entries = (await local.get("/api/v1/audit", params={"limit": 1})).json()["entries"]
    assert entries[0]["result"].startswith("failed")


async def test_devices_scenes_and_sources(local: httpx.AsyncClient, room: Room) -> None:
    device = (await local.get("/api/v1/devices/switcher")).json()
    assert device["id"] == "switcher"
    assert "route" in device["capabilities"]
    assert_problem(await local.get("/api/v1/devices/toaster"), 404, "toaster")

    scenes = (await local.get("/api/v1/scenes")).json()
    assert [s["id"] for s in scenes] == ["class-end", "class-start"]
    start = scenes[1]
    assert start["label"] == {"az": "Dərsə başla", "en": "Start class", "ru": "Начать занятие"}
    assert (start["order"], start["source"]) == (0, "lectern-pc")
    assert_problem(await local.post("/api/v1/scenes/party/activate"), 404, "party")

    response = await local.post("/api/v1/sources/laptop/select")
    assert response.status_code == 202
    sources = {s["id"]: s for s in (await local.get("/api/v1/sources")).json()}
    assert sources["laptop"]["active"] is True
    assert sources["lectern-pc"]["active"] is False
    assert sources["laptop"]["label"]["en"] == "Laptop"
    assert room.desired["switcher"]["route"] == {"1": "2", "2": "2"}
    assert_problem(await local.post("/api/v1/sources/vhs/select"), 404, "vhs")


async def test_audit_names_tokens_and_pages_back(
    local: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    api = bearer(TOKENS.api)
    await remote.post("/api/v1/scenes/class-end/activate", headers=api)
    await remote.post("/api/v1/scenes/class-end/activate", headers=bearer(TOKENS.technician))
    await remote.post(
        "/api/v1/scenes/class-end/activate", headers={**api, "X-Tribune-Origin": "panel"}
    )
    await local.post("/api/v1/scenes/class-end/activate")
    page = (await local.get("/api/v1/audit", params={"limit": 3})).json()
    whos = [(e["who"], e["actor"]) for e in page["entries"]]
    assert whos == [("panel", None), ("panel", "token:api"), ("api", "token:technician")]
    older = (await local.get("/api/v1/audit", params={"before": page["next_before"]})).json()
    assert [(e["who"], e["actor"]) for e in older["entries"]] == [("api", "token:api")]
    assert older["next_before"] is None
    assert_problem(await local.get("/api/v1/audit", params={"limit": 0}), 422)
    assert_problem(await local.get("/api/v1/audit", params={"before": "yesterday"}), 422)


async def test_health_and_metrics(local: httpx.AsyncClient, room: Room) -> None:
    health = (await local.get("/api/v1/health")).json()
    assert health["status"] == "ok"
    assert health["room"] == "baku/room-1"
    projector = health["devices"]["projector"]
    assert projector == {"online": True, "status": "online", "last_error": None}

    await local.post("/api/v1/scenes/class-start/activate")
    await until(lambda: room.converged)
    response = await local.get("/api/v1/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    samples = _samples(text)
    assert samples['tribune_device_online{device="projector"}'] == 1
    assert samples['tribune_room_converged{room="baku/room-1"}'] == 1
    assert samples['tribune_asyncio_tasks{room="baku/room-1"}'] >= 1
    name = "tribune_device_command_latency_seconds"
    count = samples[f'{name}_count{{device="projector"}}']
    assert count > 0
    assert samples[f'{name}_bucket{{device="projector",le="+Inf"}}'] == count
    buckets = [v for k, v in samples.items() if k.startswith(f'{name}_bucket{{device="projector"')]
    assert buckets == sorted(buckets), "buckets are cumulative"
    assert samples[f'{name}_sum{{device="projector"}}'] > 0
    assert 'tribune_device_errors_total{device="board"}' in samples
    assert "# TYPE tribune_device_command_latency_seconds histogram" in text


def _samples(text: str) -> dict[str, float]:
    result = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            result[key] = float(value)
    return result


async def test_reread_returns_what_the_device_says(
    local: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    response = await remote.post(
        "/api/v1/devices/switcher/reread", headers=bearer(TOKENS.technician)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["device"] == "switcher"
    assert body["errors"] == {}
    assert set(body["values"]["route"]) >= {"1", "2"}
    entries = (await local.get("/api/v1/audit", params={"limit": 1})).json()["entries"]
    assert (entries[0]["action"], entries[0]["actor"]) == ("device.reread", "token:technician")
    missing = await remote.post("/api/v1/devices/toaster/reread", headers=bearer(TOKENS.technician))
    assert_problem(missing, 404, "toaster")


async def test_root_points_to_the_api_and_unknown_paths_are_problems(
    local: httpx.AsyncClient,
) -> None:
    root = (await local.get("/")).json()
    assert root["api"] == "/api/v1/room"
    assert_problem(await local.get("/api/v1/nothing"), 404)
    assert_problem(await local.delete("/api/v1/room"), 405)
    schema = (await local.get("/api/v1/openapi.json")).json()
    assert "/api/v1/room/desired" in schema["paths"]


async def test_the_panel_files_are_served_at_the_root(room: Room, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<title>panel</title>", encoding="utf-8")
    app = create_app(room, tokens=TOKENS, panel_dir=tmp_path)
    for address in (LOCAL, REMOTE):  # static files need no token; the Host check still applies
        async with client_for(app, address) as client:
            page = await client.get("/")
            assert page.status_code == 200
            assert "<title>panel</title>" in page.text
            assert_problem(await client.get("/", headers={"Host": "evil.example"}), 421)
    async with client_for(app, LOCAL) as client:
        assert (await client.get("/api/v1/room")).status_code == 200


async def test_reread_of_an_unreachable_device_is_504(
    remote: httpx.AsyncClient, simulated: Simulated
) -> None:
    simulated.sims["board"].unplug()
    await until(lambda: simulated.room.runtimes["board"].health.status.value == "offline")
    response = await remote.post("/api/v1/devices/board/reread", headers=bearer(TOKENS.technician))
    assert_problem(response, 504)
