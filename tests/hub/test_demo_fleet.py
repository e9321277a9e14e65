"""`tribune demo --broker URL --room-id ID` joins a hub; `tribune demo --fleet N` runs a
broker, a hub and N rooms whose class-start works from the fleet's API."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.hub.conftest import running_hub
from tests.hub.test_hub import eventually
from tests.hub.test_profile_push import bumped_pjlink
from tests.sync.conftest import Broker, _require_mosquitto, free_port
from tribune.demo_fleet import fleet_room_ids


def test_fleet_room_ids_are_three_per_centre_and_unique() -> None:
    ids = fleet_room_ids(60)
    assert ids[:4] == ["baku/room-1", "baku/room-2", "baku/lecture", "baku-2/room-1"]
    assert len({room.split("/")[0] for room in fleet_room_ids(54)}) == 18
    assert len(set(fleet_room_ids(1000))) == 1000


async def test_demo_with_a_broker_joins_the_hub_as_the_given_room(
    broker: Broker, hub_dir: Path, tmp_path: Path
) -> None:
    async with running_hub(broker, hub_dir) as hub:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tribune", "demo", "--port", str(free_port()),
            "--broker", broker.url, "--room-id", "ganja/room-2",
            "--data-dir", str(tmp_path / "demo"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:

            async def online() -> Any:
                answer = await hub.http.get("/api/v1/rooms/ganja/room-2")
                body = answer.json()
                ok = answer.status_code == 200 and body["status"] == "online" and body["revision"]
                return body if ok else None

            room = await eventually(online, timeout=30)
            assert "projector" in room["snapshot"]["devices"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0

        async def offline() -> bool:
            return bool(
                (await hub.http.get("/api/v1/rooms/ganja/room-2")).json()["status"] == "offline"
            )

        await eventually(offline)


def test_a_room_id_without_a_broker_or_with_wildcards_is_refused() -> None:
    from tribune.cli import main

    assert main(["demo", "--room-id", "baku/room-1"]) == 2
    assert main(["demo", "--broker", "mqtt://127.0.0.1:1", "--room-id", "baku/#"]) == 2
    assert main(["demo", "--broker", "http://x", "--room-id", "baku/room-1"]) == 2
    assert main(["demo", "--fleet", "0"]) == 2


async def test_the_fleet_demo_runs_rooms_the_hub_can_command(tmp_path: Path) -> None:
    _require_mosquitto()
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tribune", "demo", "--fleet", "4", "--hub-port", str(port),
        "--speed", "50", "--data-dir", str(tmp_path / "fleet"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        token = None
        deadline = time.monotonic() + 60
        while token is None:
            line = await asyncio.wait_for(proc.stderr.readline(), deadline - time.monotonic())
            assert line, "the fleet demo exited"
            if found := re.search(rb"#token=(\S+)", line):
                token = found.group(1).decode()
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            assert (await http.get("/")).status_code == 200

            async def all_online() -> Any:
                rooms = (await http.get("/api/v1/rooms")).json()["rooms"]
                up = [r["id"] for r in rooms if r["status"] == "online" and r["revision"]]
                return up if len(up) == 4 else None

            assert sorted(await eventually(all_online, timeout=30)) == sorted(fleet_room_ids(4))
            body = {
                "action": "scene.activate",
                "args": {"scene": "class-start"},
                "selector": {"site": "baku"},
            }
            sent = (await http.post("/api/v1/commands", json=body)).json()
            assert sent["rooms"] == ["baku/lecture", "baku/room-1", "baku/room-2"]

            async def done() -> Any:
                found = (await http.get(f"/api/v1/commands/{sent['id']}")).json()
                statuses = {e["status"] for e in found["rooms"].values()}
                return statuses if statuses <= {"done", "failed", "expired"} else None

            assert await eventually(done, timeout=15) == {"done"}

        # A technician's new PJLink profile version, pushed to three rooms of the fleet.
        pushed = bumped_pjlink(tmp_path)
        push = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tribune", "hub", "push-profile", str(pushed),
            "--rooms", "baku/room-1,baku/room-2,baku-2/room-1", "--device", "projector",
            "--url", f"http://127.0.0.1:{port}", "--token", token,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(push.communicate(), 60)
        assert push.returncode == 0, (out, err)
        lines = out.decode().strip().splitlines()
        assert len(lines) == 3
        assert all("done — projector now pjlink v2.0-fleet" in line for line in lines), lines
        assert b"3/3" in err  # the progress bar reached the end
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
