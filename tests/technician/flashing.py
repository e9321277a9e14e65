"""A running room to flash profiles into: an Epson projector on a pty and an Extron switcher on
TCP (simulators), its ProfileStore in a temp data dir, the API in-process with the technician
token. Shared by the API, CLI and restart tests of `profile flash`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.api.conftest import (
    LOCAL,
    TOKENS,
    all_online,
    bearer,
    client_for,
    quick_runtimes,
    until,
)
from tests.room.conftest import SPEED
from tests.technician.conftest import PROFILES
from tribune.api import create_app
from tribune.config import RoomConfig, parse_config
from tribune.profiles.store import ProfileStore
from tribune.room import Room
from tribune.sim import RunningSimulator, start_simulator
from tribune.store import Store

ROOM_TOML = """
[room]
id = "baku/room-2"
name = "Flash test room"

[devices.projector]
profile = "{projector_profile}"
port = "{projector}"

[devices.switcher]
profile = "extron-sis"
port = "{switcher}"
"""

EPSON = PROFILES / "projector" / "epson-escvp21.yaml"
NEC = PROFILES / "projector" / "nec-projector.yaml"
FREEZE_NOW = """\
  freeze_now:
    send: 'FREEZE ON'
    description: freeze the picture (only in version 2)
"""


def epson_v2() -> str:
    """The shipped Epson profile as version 2, with one action more (`freeze_now`)."""
    text = EPSON.read_text(encoding="utf-8")
    assert 'version: "1"\n' in text
    assert "actions:\n" in text
    text = text.replace('version: "1"\n', 'version: "2"\n')
    return text.replace("actions:\n", "actions:\n" + FREEZE_NOW)


def nec() -> str:
    """The shipped NEC projector profile (a binary protocol the Epson does not speak)."""
    return NEC.read_text(encoding="utf-8")


@dataclass
class FlashRoom:
    """The started room, its simulators, its profile store and a technician client."""

    room: Room
    sims: dict[str, RunningSimulator]
    config: RoomConfig
    profiles: ProfileStore
    app: FastAPI
    http: httpx.AsyncClient

    def restarted(self) -> Room:
        """A room built again from the same data dir (not started): what a restart would run."""
        return Room(
            self.config,
            self.room.store,
            profiles=ProfileStore(self.profiles.data_dir),
            runtime_factory=quick_runtimes(self.config),
        )

    async def converged(self, timeout: float = 15.0) -> None:
        """Wait until every device answers and the room is where it should be."""
        await until(lambda: all_online(self.room) and self.room.converged, timeout)

    async def flash(self, device: str, text: str, **extra: Any) -> httpx.Response:
        """POST the flash endpoint."""
        body = {"profile": text, **extra}
        return await self.http.post(f"/api/v1/technician/devices/{device}/flash", json=body)


@asynccontextmanager
async def flash_room(
    folder: Path, projector_profile: str = "epson-escvp21"
) -> AsyncIterator[FlashRoom]:
    """Simulators, a started room on them and an in-process technician client."""
    async with AsyncExitStack() as stack:
        sims = {
            "projector": await stack.enter_async_context(
                start_simulator(
                    "epson-escvp21", pty=True, link=str(folder / "projector"), speed=SPEED
                )
            ),
            "switcher": await stack.enter_async_context(
                start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=SPEED)
            ),
        }
        config = parse_config(
            ROOM_TOML.format(
                projector=str(folder / "projector"),
                projector_profile=projector_profile,
                switcher=f"tcp://127.0.0.1:{sims['switcher'].port}",
            ),
            "room.toml",
        )
        store = Store(folder / "tribune.db")
        await store.open()
        stack.push_async_callback(store.close)
        profiles = ProfileStore(folder / "data")
        room = Room(config, store, profiles=profiles, runtime_factory=quick_runtimes(config))
        await room.start()
        stack.push_async_callback(room.stop)
        app = create_app(room, tokens=TOKENS)
        http = await stack.enter_async_context(
            client_for(app, LOCAL, headers=bearer(TOKENS.technician), timeout=60)
        )
        await until(lambda: all_online(room))
        yield FlashRoom(room, sims, config, profiles, app, http)
