"""`tribune serve` starts the key service with the room and stops it (grab released) with it.

The fake `/dev/input` stands for the keypad's node (/dev/input/eventN, a pipe of `struct
input_event` bytes) and its EVIOCGRAB; the room, the API server and the store are real.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from evdev import ecodes

from tests.inputs.conftest import BUTTONS_TOML, make_keypad, until
from tests.room.conftest import ROOM_TOML, SimRoom, quick
from tribune.config import RoomConfig, parse_config
from tribune.drivers.runtime import DeviceRuntime
from tribune.inputs.fake import FakeInputSource
from tribune.profiles.loader import ProfileLoader
from tribune.room import Room
from tribune.service import Service, run_service
from tribune.store import Store


async def test_serve_runs_the_keys_with_the_room(
    sim_room: SimRoom, fake_input: FakeInputSource
) -> None:
    keypad = make_keypad()
    fake_input.plug(keypad)
    sims = sim_room.sims
    text = ROOM_TOML.format(
        projector=f"tcp://127.0.0.1:{sims['projector'].port}",
        board=str(sim_room.data_dir / "board"),
        switcher=f"tcp://127.0.0.1:{sims['switcher'].port}",
    ) + BUTTONS_TOML.format(link=keypad.link, grab="true")
    config = parse_config(text, "room.toml")
    loader = ProfileLoader()

    def make_room(config: RoomConfig, store: Store) -> Room:
        runtimes = {
            name: DeviceRuntime(name, quick(loader.load(dev.profile).profile), dev.port)
            for name, dev in config.devices.items()
        }
        return Room(config, store, runtimes=runtimes)

    up: asyncio.Future[Service] = asyncio.get_running_loop().create_future()

    async def started(service: Service) -> None:
        up.set_result(service)

    task = asyncio.create_task(
        run_service(
            config,
            sim_room.data_dir / "data",
            config_dir=sim_room.data_dir,
            host="127.0.0.1",
            port=0,
            room_factory=make_room,
            started=started,
            input_source=fake_input,
        )
    )
    service = await asyncio.wait_for(up, 10)
    keys: Any = service.keys
    assert keys is not None
    await until(lambda: bool(keys.open))
    assert keypad.grabbed_by is not None
    keypad.press(ecodes.KEY_F1)
    await until(lambda: service.room.source == "lectern-pc")
    entry = (await service.room.store.audit_tail(1))[0]
    assert (entry.who, entry.actor) == ("button", "desk:KEY_F1")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert keypad.released()  # closed: the grab ended with the service
