"""A real hub (HubStore, the API, uvicorn) over real HTTP on a thread of its own, for the fleet
page's browser tests and screenshots, with rooms filled in as rooms would send them.

The hub's MQTT link is never started, so commands stay `queued` until a test sets a room's
answer with `store.set_result`, as the link does when a room's `cmd/result` arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from tests.room.test_crash_restart import free_port
from tribune.hub import HubStore, HubSubscriber
from tribune.hub.api import Thresholds, create_hub_app
from tribune.hub.auth import create_operator

T = TypeVar("T")
THRESHOLDS = Thresholds(lamp_hours=3000, filter_hours=2000)


class _QuietServer(uvicorn.Server):
    """uvicorn without signal handlers: it runs on a thread, the test owns the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class LiveHub:
    """A hub serving its API and the fleet page on `url`; `run()` calls its store."""

    url: str
    store: HubStore
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the hub's event loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def token(self, name: str, role: str) -> str:
        """A new operator's bearer token."""
        return self.run(create_operator(self.store, name, role))


@contextlib.contextmanager
def live_hub(data_dir: Path) -> Iterator[LiveHub]:
    """Start a hub on a free loopback port; stop it on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fleet-hub", daemon=True)
    thread.start()
    store = HubStore(data_dir / "hub.db")
    asyncio.run_coroutine_threadsafe(store.open(), loop).result(10)
    link = HubSubscriber(store, "127.0.0.1", free_port())  # never started: nothing is published
    port = free_port()
    config = uvicorn.Config(
        create_hub_app(link, THRESHOLDS),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = _QuietServer(config)
    serving = asyncio.run_coroutine_threadsafe(server.serve(), loop)
    hub = LiveHub(f"http://127.0.0.1:{port}", store, loop)
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert not serving.done(), serving.result()
            assert time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.02)
        yield hub
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            serving.result(10)
        hub.run(store.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# --- what rooms send ------------------------------------------------------------------------


def device(
    kind: str,
    name: str,
    *,
    power: str | None = None,
    source: str | None = None,
    lamp: int | None = None,
    filter_hours: int | None = None,
    online: bool = True,
    error: str | None = None,
) -> dict[str, Any]:
    """One device of a room's `state` snapshot, as the room service shows it."""
    readings: dict[str, Any] = {}
    for reading, value in (
        ("power", power),
        ("input", source),
        ("lamp_hours", lamp),
        ("filter_hours", filter_hours),
    ):
        if value is not None:
            readings[reading] = {"value": value, "at": "2026-11-26T08:00:00.000Z", "source": "poll"}
    status = "error" if error else "online" if online else "offline"
    return {
        "name": name,
        "kind": kind,
        "online": online,
        "health": {"status": status, "last_error": error},
        "reported": readings,
    }


async def send_state(
    store: HubStore, room: str, name: str, devices: dict[str, Any], revision: int = 1
) -> None:
    """The room's retained `state` message arriving at the hub."""
    snapshot = {"id": room, "name": name, "converged": True, "source": "lectern-pc"}
    snapshot["devices"] = devices
    payload = {"revision": revision, "at": "2026-11-26T08:00:00.000Z", "room": room}
    await store.set_state(room, revision, {**payload, "snapshot": snapshot}, time.time())


async def send_event(
    store: HubStore, room: str, seq: int, kind: str, data: Any, received: float | None = None
) -> None:
    """One numbered event from the room's outbox, received by the hub at `received`."""
    at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 600 + seq))
    payload = {"seq": seq, "type": kind, "at": at, "room": room, "data": data}
    await store.add_event(room, seq, payload, time.time() if received is None else received)


def audit(entry_id: int, action: str, detail: dict[str, Any], result: str = "done") -> Any:
    """An audit entry as the room keeps it (its `at` is Unix seconds)."""
    return {
        "id": entry_id,
        "at": time.time() - 3600 + entry_id * 60,
        "who": "panel",
        "actor": "instructor",
        "action": action,
        "detail": detail,
        "result": result,
    }


REGIONAL = ("ganja-1", "ganja-2", "nakhchivan-1", "sumgayit", "mingachevir", "shaki", "guba")
BAKU_ROOMS = ("baku/lecture", "baku/room-1", "baku/room-2", "baku/studio")
AUDIT_ENTRIES = 25  # more than one page of the room's audit history


async def seed(store: HubStore) -> None:
    """Baku's main centre (one room over its lamp hours, the studio offline) and regional ones.

    Alerts: baku/room-1's lamp, baku/studio's projector offline. A help request from ganja-1.
    """
    now = time.time()
    projector = "Epson EB-L630U"
    board = "SMART Board MX"
    await send_state(
        store,
        "baku/room-1",
        "Tədris otağı 1",
        {
            "projector": device("projector", projector, power="on", source="hdmi1", lamp=3120),
            "board": device("board", board, power="on", source="ops"),
            "switcher": device("switcher", "Kramer VS-44"),
        },
    )
    await send_state(
        store,
        "baku/room-2",
        "Tədris otağı 2",
        {
            "projector": device("projector", projector, power="off", lamp=1450, filter_hours=900),
            "board": device("board", board, power="off"),
        },
    )
    await send_state(
        store,
        "baku/lecture",
        "Mühazirə otağı",
        {
            "projector": device("projector", projector, power="warming", lamp=2210),
            "codec": device("codec", "Cisco Room Kit"),
        },
    )
    await send_state(
        store,
        "baku/studio",
        "Studiya",
        {"projector": device("projector", projector, power="off", lamp=800, online=False)},
    )
    for room in ("baku/room-1", "baku/room-2", "baku/lecture"):
        await store.set_status(room, "online", now - 4)
    for index, site in enumerate(REGIONAL):
        room = f"{site}/room-1"
        await send_state(
            store,
            room,
            "Tədris otağı",
            {
                "board": device("board", board, power="on" if index % 2 else "off", source="ops"),
                "projector": device("projector", projector, power="off", lamp=400 + index * 350),
            },
        )
        await store.set_status(room, "online", now - 10 - index)
    lamp = {"code": "lamp.hours", "device": "projector", "hours": 3120, "threshold": 3000}
    await send_event(store, "baku/room-1", 1, "alert", {**lamp, "active": True})
    offline = {"code": "device.offline", "device": "projector", "reason": "no reply"}
    gone = now - 2 * 3600  # the studio's projector went, then the studio itself
    await send_event(store, "baku/studio", 1, "alert", {**offline, "active": True}, gone - 60)
    await store.set_status("baku/studio", "offline", gone)
    help_entry = {
        "id": 41,
        "at": now - 90,
        "who": "panel",
        "actor": "instructor",
        "action": "help.request",
        "detail": {"room": "ganja-1/room-1", "note": "Proyektor görüntü vermir"},
        "result": "sent",
    }
    await send_event(store, "ganja-1/room-1", 1, "help", help_entry)
    for entry_id in range(1, AUDIT_ENTRIES + 1):
        scene = "class-start" if entry_id % 2 else "class-end"
        entry = audit(entry_id, "scene.activate", {"scene": scene})
        await send_event(store, "baku/room-1", 1 + entry_id, "audit", entry)
    change = {"device": "projector", "capability": "power", "value": "on"}
    await send_event(store, "baku/room-1", AUDIT_ENTRIES + 2, "change", change)


async def seed_many(store: HubStore, rooms: int, sites: int = 18) -> None:
    """`rooms` rooms over `sites` centres, three devices each, no hours due; every 50th offline."""
    now = time.time()
    for index in range(rooms):
        room = f"site-{index % sites:02d}/room-{index // sites:03d}"
        devices = {
            "projector": device("projector", "Epson", power="on", source="hdmi1", lamp=index * 2),
            "board": device("board", "SMART", power="on", source="ops"),
            "switcher": device("switcher", "Kramer"),
        }
        await send_state(store, room, f"Otaq {index}", devices)
        await store.set_status(room, "offline" if index % 50 == 0 else "online", now - index % 30)
