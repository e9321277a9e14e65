"""The hub API without a broker: roles, bulk commands with a selector, alerts, help requests,
operators. (Delivery to real rooms is tests/hub/test_hub.py, against a real Mosquitto.)"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tribune.hub import HubStore, HubSubscriber
from tribune.hub.api import create_hub_app
from tribune.hub.auth import create_operator

ROOMS = ["baku/room-1", "baku/room-2", "baku/studio", "ganja/room-1"]


class Hub:
    def __init__(self, store: HubStore, app: Any) -> None:
        self.store = store
        self.app = app

    async def client(self, role: str, name: str | None = None) -> httpx.AsyncClient:
        token = await create_operator(self.store, name or f"{role}-user", role)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://hub",
            headers={"Authorization": f"Bearer {token}"},
        )


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    store = HubStore(tmp_path / "hub.db")
    await store.open()
    link = HubSubscriber(store, "127.0.0.1", 1)  # never started: commands stay `queued`
    for room in ROOMS:
        await store.set_status(room, "online", time.time())
    yield Hub(store, create_hub_app(link))
    await store.close()


def event(seq: int, kind: str, data: dict[str, Any], at: str = "2026-11-26T08:00:00.000Z") -> Any:
    return {"seq": seq, "type": kind, "at": at, "room": "baku/room-1", "data": data}


async def test_without_a_token_nothing_but_the_page_and_the_openapi_document(hub: Hub) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=hub.app), base_url="http://hub"
    ) as anonymous:
        for path in ("/api/v1/rooms", "/api/v1/alerts", "/api/v1/help-requests", "/api/v1/me"):
            answer = await anonymous.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["content-type"] == "application/problem+json"
        wrong = await anonymous.get("/api/v1/rooms", headers={"Authorization": "Basic eDp5"})
        assert wrong.status_code == 401
        assert (await anonymous.get("/api/v1/openapi.json")).status_code == 200
        assert (await anonymous.get("/")).status_code == 200
        assert (await anonymous.get("/fleet/../hub.db")).status_code == 404


async def test_roles_viewer_reads_operator_commands_admin_manages_operators(hub: Hub) -> None:
    body = {"action": "scene.activate", "args": {"scene": "class-end"}}
    async with await hub.client("viewer") as viewer:
        assert (await viewer.get("/api/v1/me")).json()["role"] == "viewer"
        assert (await viewer.get("/api/v1/rooms")).status_code == 200
        refused = await viewer.post("/api/v1/rooms/baku/room-1/commands", json=body)
        assert refused.status_code == 403
        assert "viewer" in refused.json()["detail"]
        assert (await viewer.get("/api/v1/operators")).status_code == 403
    async with await hub.client("operator", "leyla") as operator:
        sent = await operator.post("/api/v1/rooms/baku/room-1/commands", json=body)
        assert sent.status_code == 202
        found = (await operator.get(f"/api/v1/commands/{sent.json()['id']}")).json()
        assert found["issued_by"] == "operator:leyla"
        assert (await operator.post("/api/v1/operators", json={})).status_code == 403
    async with await hub.client("admin") as admin:
        made = await admin.post("/api/v1/operators", json={"name": "rauf", "role": "viewer"})
        assert made.status_code == 201
        token = made.json()["token"]
        names = [op["name"] for op in (await admin.get("/api/v1/operators")).json()["operators"]]
        assert "rauf" in names
        assert token not in str(names)
        again = await admin.post("/api/v1/operators", json={"name": "rauf", "role": "admin"})
        assert again.status_code == 409
        bad = await admin.post("/api/v1/operators", json={"name": "x", "role": "god"})
        assert bad.status_code == 422
        as_rauf = {"Authorization": f"Bearer {token}"}
        assert (await admin.get("/api/v1/me", headers=as_rauf)).json()["name"] == "rauf"
        assert (await admin.delete("/api/v1/operators/rauf")).status_code == 204
        assert (await admin.get("/api/v1/me", headers=as_rauf)).status_code == 401
        assert (await admin.delete("/api/v1/operators/rauf")).status_code == 404


async def test_a_bulk_command_picks_a_site_a_list_or_every_room(hub: Hub) -> None:
    base = {"action": "scene.activate", "args": {"scene": "class-end"}, "ttl_s": 60}
    async with await hub.client("operator") as http:
        site = await http.post("/api/v1/commands", json={**base, "selector": {"site": "baku"}})
        assert site.status_code == 202
        assert site.json()["rooms"] == ["baku/room-1", "baku/room-2", "baku/studio"]
        found = (await http.get(f"/api/v1/commands/{site.json()['id']}")).json()
        assert {r: e["status"] for r, e in found["rooms"].items()} == dict.fromkeys(
            site.json()["rooms"], "queued"
        )
        listed = await http.post(
            "/api/v1/commands",
            json={**base, "selector": {"rooms": ["ganja/room-1", "baku/studio", "ganja/room-1"]}},
        )
        assert listed.json()["rooms"] == ["baku/studio", "ganja/room-1"]
        every = await http.post("/api/v1/commands", json={**base, "selector": {"all": True}})
        assert every.json()["rooms"] == ROOMS
        recent = (await http.get("/api/v1/commands")).json()["commands"]
        assert [c["id"] for c in recent][:1] == [every.json()["id"]]
        assert recent[0]["statuses"] == {"queued": 4}

        async def refused(selector: Any) -> httpx.Response:
            return await http.post("/api/v1/commands", json={**base, "selector": selector})

        assert (await refused({"site": "shaki"})).status_code == 404
        unknown = await refused({"rooms": ["baku/room-1", "baku/room-9"]})
        assert unknown.status_code == 404
        assert "baku/room-9" in unknown.json()["detail"]
        assert (await refused({"site": "baku", "all": True})).status_code == 422
        assert (await refused({})).status_code == 422
        assert (await refused({"rooms": ["baku/#"]})).status_code == 422
        assert (await refused({"site": "+"})).status_code == 422
        no_selector = await http.post("/api/v1/commands", json=base)
        assert no_selector.status_code == 422
        # Nothing was queued by the refusals.
        assert len((await http.get("/api/v1/commands")).json()["commands"]) == 3


async def test_alerts_follow_the_rooms_word_and_can_be_acknowledged(hub: Hub) -> None:
    room = "baku/room-1"
    offline = {"code": "device.offline", "device": "projector", "reason": "no reply"}
    await hub.store.add_event(room, 1, event(1, "alert", {**offline, "active": True}), 1.0)
    await hub.store.add_event(room, 2, event(2, "change", {"source": "pc"}), 1.0)
    lamp = {"code": "lamp.hours", "device": "projector", "hours": 3100, "threshold": 3000}
    await hub.store.add_event(room, 3, event(3, "alert", {**lamp, "active": True}), 1.0)
    async with await hub.client("operator") as http:
        alerts = (await http.get("/api/v1/alerts")).json()["alerts"]
        assert {(a["code"], a["device"], a["active"]) for a in alerts} == {
            ("device.offline", "projector", True),
            ("lamp.hours", "projector", True),
        }
        rooms = {r["id"]: r for r in (await http.get("/api/v1/rooms")).json()["rooms"]}
        assert rooms[room]["open_alerts"] == 2
        # Back online: the room clears it; a late, older copy does not raise it again.
        await hub.store.add_event(room, 4, event(4, "alert", {**offline, "active": False}), 2.0)
        await hub.store.add_event(room, 1, event(1, "alert", {**offline, "active": True}), 3.0)
        open_now = (await http.get("/api/v1/alerts")).json()["alerts"]
        assert [a["code"] for a in open_now] == ["lamp.hours"]
        history = (await http.get("/api/v1/alerts", params={"which": "all"})).json()["alerts"]
        assert len(history) == 2
        lamp_id = open_now[0]["id"]
        acked = await http.post(f"/api/v1/alerts/{lamp_id}/ack")
        assert acked.json()["acked_by"] == "operator-user"
        assert (await http.get("/api/v1/alerts")).json()["alerts"] == []
        active = (await http.get("/api/v1/alerts", params={"which": "active"})).json()["alerts"]
        assert [a["acked_by"] for a in active] == ["operator-user"]
        assert (await http.post("/api/v1/alerts/999/ack")).status_code == 404
        assert (await http.get("/api/v1/alerts", params={"which": "bogus"})).status_code == 422
        # Raised again later: open again, needing a new acknowledgement.
        await hub.store.add_event(room, 5, event(5, "alert", {**offline, "active": True}), 4.0)
        assert [a["code"] for a in (await http.get("/api/v1/alerts")).json()["alerts"]] == [
            "device.offline"
        ]
        ganja = await http.get("/api/v1/alerts", params={"site": "ganja"})
        assert ganja.json()["alerts"] == []


async def test_help_requests_stay_open_until_someone_acknowledges_them(hub: Hub) -> None:
    entry = {
        "id": 41,
        "at": "2026-11-26T08:05:00.000Z",
        "who": "panel",
        "actor": "instructor",
        "action": "help.request",
        "detail": {"room": "baku/room-1", "note": "projector shows no picture"},
        "result": "sent",
    }
    await hub.store.add_event("baku/room-1", 7, event(7, "help", entry), 1.0)
    await hub.store.add_event("baku/room-1", 7, event(7, "help", entry), 2.0)  # redelivered
    async with await hub.client("operator", "tural") as http:
        found = (await http.get("/api/v1/help-requests")).json()["help_requests"]
        assert [(h["room"], h["id"], h["note"], h["status"]) for h in found] == [
            ("baku/room-1", 41, "projector shows no picture", "open")
        ]
        rooms = {r["id"]: r for r in (await http.get("/api/v1/rooms")).json()["rooms"]}
        assert rooms["baku/room-1"]["open_help_requests"] == 1
        acked = await http.post("/api/v1/help-requests/baku/room-1/41/ack")
        assert acked.status_code == 200
        assert (await http.post("/api/v1/help-requests/baku/room-1/41/ack")).status_code == 404
        assert (await http.get("/api/v1/help-requests")).json()["help_requests"] == []
        every = (await http.get("/api/v1/help-requests", params={"which": "all"})).json()
        assert every["help_requests"][0]["acked_by"] == "tural"
        audit = await http.get("/api/v1/rooms/baku/room-1/events", params={"type": "help"})
        assert [e["seq"] for e in audit.json()["events"]] == [7]
        assert (await http.get("/api/v1/rooms/baku/room-9/events")).status_code == 404


async def test_rooms_carry_a_summary_of_their_devices(hub: Hub) -> None:
    snapshot = {
        "name": "Training room 1",
        "source": "pc",
        "converged": True,
        "devices": {
            "projector": {
                "name": "Epson EB-L",
                "kind": "projector",
                "online": True,
                "health": {"status": "online"},
                "reported": {
                    "power": {"value": "on", "at": "x", "source": "poll"},
                    "input": {"value": "hdmi1", "at": "x", "source": "poll"},
                    "lamp_hours": {"value": 1234, "at": "x", "source": "poll"},
                },
            }
        },
    }
    await hub.store.set_state("baku/room-1", 3, {"revision": 3, "snapshot": snapshot}, 1.0)
    async with await hub.client("viewer") as http:
        answer = (await http.get("/api/v1/rooms", params={"site": "baku"})).json()
        assert answer["thresholds"] == {"lamp_hours": 3000, "filter_hours": 2000}
        rooms = {r["id"]: r for r in answer["rooms"]}
        assert set(rooms) == {"baku/room-1", "baku/room-2", "baku/studio"}
        assert rooms["baku/room-1"]["name"] == "Training room 1"
        assert rooms["baku/room-1"]["devices"]["projector"] == {
            "name": "Epson EB-L",
            "kind": "projector",
            "online": True,
            "health": "online",
            "power": "on",
            "input": "hdmi1",
            "lamp_hours": 1234,
        }
        assert rooms["baku/room-2"]["devices"] == {}
