"""A fleet push of a device profile from the hub, with a real Mosquitto, real rooms on
simulated projectors and the real `tribune hub push-profile` CLI: `done` where the device
answers as the profile says, `failed` with the reason (old profile kept) where it does not;
unsigned or wrongly signed pushes refused."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.hub.conftest import RunningHub, running_hub
from tests.hub.test_hub import eventually
from tests.room.conftest import SPEED
from tests.sync.conftest import Broker, free_port
from tribune.cli import main
from tribune.config import parse_config
from tribune.hub.api import create_hub_app
from tribune.hub.publisher import Publisher
from tribune.profiles.loader import shipped_profiles_dir
from tribune.profiles.store import ProfileStore
from tribune.room import Room
from tribune.sim import start_simulator
from tribune.store import Store
from tribune.sync import SyncClient
from tribune.sync.profile_push import check_push, push_message
from tribune.sync.signing import load_public_key

ROOM_TOML = """
[room]
id = "{room_id}"
name = "{room_id}"

[devices.projector]
profile = "{profile}"
port = "tcp://127.0.0.1:{port}"

[sync]
broker = "{broker}"
state_min_interval = 0.1
reconnect_max = 1.0
hub_key_file = "hub.pem"
"""


@asynccontextmanager
async def pushable_room(
    room_id: str, sim_id: str, profile: str, broker: Broker, folder: Path, hub_pem: str
) -> AsyncIterator[Room]:
    """A linked room with a profile store and the hub's key, on one simulated projector."""
    async with start_simulator(sim_id, tcp=("127.0.0.1", 0), speed=SPEED) as sim:
        folder.mkdir(parents=True)
        (folder / "hub.pem").write_text(hub_pem)
        text = ROOM_TOML.format(room_id=room_id, profile=profile, port=sim.port, broker=broker.url)
        config = parse_config(text, "room.toml")
        store = Store(folder / "tribune.db")
        await store.open()
        room = Room(config, store, base_dir=folder, profiles=ProfileStore(folder))
        await room.start()
        assert config.sync is not None
        link = SyncClient(room, config.sync, base_dir=folder)
        await link.start()
        try:
            await asyncio.wait_for(link.connected.wait(), 10)
            yield room
        finally:
            await link.stop()
            await room.stop()
            await store.close()


@asynccontextmanager
async def served(hub: RunningHub) -> AsyncIterator[str]:
    """The hub's app over real HTTP (for the CLI); its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_hub_app(hub.link), host="127.0.0.1", port=port, log_level="error")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


def bumped_pjlink(folder: Path) -> Path:
    """The shipped PJLink profile as a new version a technician would push."""
    text = (shipped_profiles_dir() / "projector" / "pjlink.yaml").read_text()
    assert "\nversion:" not in text
    path = folder / "pjlink.yaml"
    path.write_text(text.replace("kind: projector\n", 'kind: projector\nversion: "2.0-fleet"\n'))
    return path


async def test_a_fleet_push_is_done_where_the_probe_matches_and_failed_where_not(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = Publisher.load_or_create(tmp_path / "hub")
    pem = publisher.public_pem()
    rooms: dict[str, Room] = {}
    async with (
        running_hub(broker, tmp_path / "hub", publisher=publisher) as hub,
        AsyncExitStack() as stack,
    ):
        await asyncio.wait_for(hub.link.connected.wait(), 5)
        for room_id, sim_id, profile in [
            ("baku/room-1", "pjlink", "pjlink"),
            ("baku/room-2", "pjlink", "pjlink"),
            ("baku/lecture", "pjlink", "pjlink"),
            ("baku/studio", "epson-escvp21", "epson-escvp21"),  # another projector model
        ]:
            folder = tmp_path / room_id.replace("/", "-")
            rooms[room_id] = await stack.enter_async_context(
                pushable_room(room_id, sim_id, profile, broker, folder, pem)
            )

        async def all_seen() -> bool:
            listed = (await hub.http.get("/api/v1/rooms")).json()["rooms"]
            return len([r for r in listed if r["revision"]]) == 4

        await eventually(all_seen, timeout=10)
        pushed = bumped_pjlink(tmp_path)
        async with served(hub) as url:
            code = await asyncio.to_thread(
                main,
                [
                    *("hub", "push-profile", str(pushed), "--site", "baku"),
                    *("--device", "projector", "--url", url, "--token", hub.token),
                    *("--ttl", "60", "--quiet"),
                ],
            )
        out = capsys.readouterr().out
        assert code == 4, out  # one room refused
        lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
        for room_id in ("baku/room-1", "baku/room-2", "baku/lecture"):
            assert lines[room_id].startswith("done — projector now pjlink v2.0-fleet"), out
            runtime = rooms[room_id].runtimes["projector"]
            assert (runtime.profile.id, runtime.profile.version) == ("pjlink", "2.0-fleet")
            installed = ProfileStore(tmp_path / room_id.replace("/", "-")).history("pjlink")
            assert installed[0].record.installed_by == "operator:test-admin"
        assert lines["baku/studio"].startswith("failed — projector refused"), out
        studio = rooms["baku/studio"].runtimes["projector"]
        assert studio.profile.id == "epson-escvp21"  # kept its old profile
        assert ProfileStore(tmp_path / "baku-studio").history("pjlink") == []

        # The pushed profile is in use without a restart: the room drives the device with it.
        room = rooms["baku/room-1"]
        await room.apply({"projector": {"power": "on"}}, who="api", actor="test")

        async def powering() -> bool:
            reading = room.runtimes["projector"].state.get("power")
            return reading is not None and reading.value in ("warming", "on")

        await eventually(powering, timeout=10)


def test_check_push_wants_the_hubs_signature_and_the_right_sha256(tmp_path: Path) -> None:
    hub = Publisher.load_or_create(tmp_path / "hub")
    other = Publisher.load_or_create(tmp_path / "other")
    key = load_public_key(hub.public_pem().encode())
    text = "id: x\n"
    sha = hashlib.sha256(text.encode()).hexdigest()
    deadline = "2026-11-26T22:00:00.000Z"

    def args(signer: Publisher, command_id: str = "c-1", sha256: str = sha) -> dict[str, Any]:
        signature = signer.sign(push_message(command_id, deadline, sha256))
        return {"profile": text, "sha256": sha256, "signature": signature}

    assert check_push(args(hub), key, "c-1", deadline) == text
    with pytest.raises(ValueError, match="signature"):
        check_push(args(other), key, "c-1", deadline)
    with pytest.raises(ValueError, match="signature"):  # signed for another command
        check_push(args(hub, command_id="c-0"), key, "c-1", deadline)
    with pytest.raises(ValueError, match="signature"):  # replayed with a later deadline
        check_push(args(hub), key, "c-1", "2026-11-27T22:00:00.000Z")
    wrong = "0" * 64
    with pytest.raises(ValueError, match="sha256"):
        check_push(args(hub, sha256=wrong), key, "c-1", deadline)
    with pytest.raises(ValueError, match="hub_key_file"):
        check_push(args(hub), None, "c-1", deadline)
    garbage = {**args(hub), "signature": base64.b64encode(b"x" * 64).decode()}
    with pytest.raises(ValueError, match="signature"):
        check_push(garbage, key, "c-1", deadline)
    with pytest.raises(ValueError, match="signature"):
        check_push({**args(hub), "signature": "not base64!"}, key, "c-1", deadline)


async def test_the_hub_refuses_to_push_an_invalid_profile(broker: Broker, tmp_path: Path) -> None:
    async with running_hub(broker, tmp_path / "hub") as hub:
        await hub.store.set_status("baku/room-1", "online", 1.0)
        body = {
            "action": "profile.push",
            "args": {"profile": "id: pjlink\nnmae: x\n"},
            "selector": {"all": True},
        }
        answer = await hub.http.post("/api/v1/commands", json=body)
        assert answer.status_code == 422
        assert "profile.yaml:2" in answer.json()["detail"]
        assert "nmae" in answer.json()["detail"]
        body["args"] = {"profile": "id: x\n", "shell": "rm -rf /"}
        assert (await hub.http.post("/api/v1/commands", json=body)).status_code == 422
        assert (await hub.http.get("/api/v1/commands")).json()["commands"] == []
