"""A room of simulated devices on real ptys and sockets, for the room's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.roundtrip.harness import scaled
from tribune.config import RoomConfig, parse_config
from tribune.drivers.runtime import DeviceRuntime
from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import Profile
from tribune.room import Room
from tribune.sim import RunningSimulator, start_simulator
from tribune.store import Store

SPEED = 50.0


def quick(profile: Profile, speed: float = SPEED) -> Profile:
    """Profile timing divided by the simulators' speed, polls included."""
    return scaled(profile, speed)


ROOM_TOML = """
[room]
id = "baku/room-1"
name = "Test room"

[devices.projector]
profile = "pjlink"
port = "{projector}"

[devices.board]
profile = "smart-board"
port = "{board}"

[devices.switcher]
profile = "extron-sis"
port = "{switcher}"

[sources.lectern-pc]
label = {{ az = "Tribuna kompüteri", en = "Lectern PC", ru = "Компьютер трибуны" }}
desired = {{ switcher = {{ route = {{ "1" = "1", "2" = "1" }} }} }}

[sources.laptop]
label = {{ az = "Noutbuk", en = "Laptop", ru = "Ноутбук" }}
desired = {{ switcher = {{ route = {{ "1" = "2", "2" = "2" }} }} }}

[scenes.class-start]
label = {{ az = "Dərsə başla", en = "Start class", ru = "Начать занятие" }}
source = "lectern-pc"
desired = {{ projector = {{ power = "on", input = "digital1" }}, board = {{ power = "on" }} }}

[scenes.class-end]
label = {{ az = "Dərsi bitir", en = "End class", ru = "Завершить занятие" }}
desired = {{ projector = {{ power = "off" }}, board = {{ power = "off" }} }}
"""


@dataclass
class SimRoom:
    """Simulators plus a way to build (and rebuild, after a "crash") the room on them."""

    sims: dict[str, RunningSimulator]
    config: RoomConfig
    data_dir: Path
    make: Callable[[], Any]


@pytest.fixture
async def sim_room(tmp_path: Path) -> AsyncIterator[SimRoom]:
    async with AsyncExitStack() as stack:
        sims = {
            "projector": await stack.enter_async_context(
                start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=SPEED)
            ),
            "board": await stack.enter_async_context(
                start_simulator("smart-board", pty=True, link=str(tmp_path / "board"), speed=SPEED)
            ),
            "switcher": await stack.enter_async_context(
                start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=SPEED)
            ),
        }
        text = ROOM_TOML.format(
            projector=f"tcp://127.0.0.1:{sims['projector'].port}",
            board=str(tmp_path / "board"),
            switcher=f"tcp://127.0.0.1:{sims['switcher'].port}",
        )
        config = parse_config(text, "room.toml")
        loader = ProfileLoader()

        async def make() -> Room:
            store = Store(tmp_path / "tribune.db")
            await store.open()
            runtimes = {
                device_id: DeviceRuntime(
                    device_id, quick(loader.load(dev.profile).profile), dev.port
                )
                for device_id, dev in config.devices.items()
            }
            return Room(config, store, runtimes=runtimes)

        yield SimRoom(sims, config, tmp_path, make)
