"""`tribune demo`: Baku training room 1 on simulated devices, served like the real room.

Six devices, each a simulator written from its protocol document: an Epson projector, a SMART
board, an Extron switcher and a Cisco codec on ptys (serial lines), a second projector over
PJLink on TCP, and a Samsung confidence monitor on a pty. The room config is written to the data
dir with the pty paths, and `tribune serve` runs on it. `--speed` shortens warm-up and cool-down.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from tribune.config import parse_config
from tribune.service import Service, run_service
from tribune.sim import start_simulator

log = logging.getLogger(__name__)

DEMO_TOML = """\
# Written by `tribune demo`: Baku training room 1 on simulated devices.
[room]
id = "baku/room-1"
name = "Bakı — Tədris otağı 1 (demo)"
language = "az"
timezone = "Asia/Baku"

[devices.projector]
profile = "epson-escvp21"
port = "{projector}"
name = {{ az = "Proyektor", en = "Projector", ru = "Проектор" }}

[devices.board]
profile = "smart-board"
port = "{board}"
name = {{ az = "Elektron lövhə", en = "Electronic board", ru = "Электронная доска" }}

[devices.switcher]
profile = "extron-sis"
port = "{switcher}"
name = {{ az = "Kommutator", en = "AV switcher", ru = "Коммутатор" }}

[devices.projector-2]
profile = "pjlink"
port = "{projector2}"
name = {{ az = "İkinci ekran", en = "Second screen", ru = "Второй экран" }}

[devices.codec]
profile = "cisco-roomos"
port = "{codec}"
name = {{ az = "Telekonfrans", en = "Teleconference", ru = "Телеконференция" }}

[devices.monitor]
profile = "samsung-mdc"
port = "{monitor}"
options = {{ id = "01" }}
name = {{ az = "Tribuna monitoru", en = "Lectern monitor", ru = "Монитор трибуны" }}

# Extron inputs: 1 lectern PC, 2 laptop, 3 document camera, 4 codec.
# Outputs: 1 board, 2 projector, 3 second screen, 4 lectern monitor.
[sources.lectern-pc]
label = {{ az = "Tribuna kompüteri", en = "Lectern PC", ru = "Компьютер трибуны" }}
icon = "pc"
order = 1
desired = {{ switcher = {{ route = {{ "1" = "1", "2" = "1", "3" = "1", "4" = "1" }} }} }}

[sources.laptop]
label = {{ az = "Noutbuk (HDMI)", en = "Laptop (HDMI)", ru = "Ноутбук (HDMI)" }}
icon = "laptop"
order = 2
desired = {{ switcher = {{ route = {{ "1" = "2", "2" = "2", "3" = "2", "4" = "2" }} }} }}

[sources.document-camera]
label = {{ az = "Sənəd kamerası", en = "Document camera", ru = "Документ-камера" }}
icon = "camera"
order = 3
desired = {{ switcher = {{ route = {{ "1" = "3", "2" = "3", "3" = "3", "4" = "3" }} }} }}

[sources.teleconference]
label = {{ az = "Telekonfrans", en = "Teleconference", ru = "Телеконференция" }}
icon = "video"
order = 4
desired = {{ switcher = {{ route = {{ "1" = "4", "2" = "4", "3" = "4", "4" = "4" }} }} }}

[scenes.class-start]
label = {{ az = "Dərsə başla", en = "Start class", ru = "Начать занятие" }}
order = 1
source = "lectern-pc"
desired.board = {{ power = "on" }}
desired.projector = {{ power = "on", input = "hdmi1" }}
desired.projector-2 = {{ power = "on" }}
desired.monitor = {{ power = "on" }}

[scenes.class-end]
label = {{ az = "Dərsi bitir", en = "End class", ru = "Завершить занятие" }}
order = 2
desired.board = {{ power = "off" }}
desired.projector = {{ power = "off" }}
desired.projector-2 = {{ power = "off" }}
desired.monitor = {{ power = "off" }}

[[schedule]]
id = "nightly-off"
when = "daily 22:00"
scene = "class-end"

# The panel: sound through the switcher's amplifier, blank both projectors, freeze the main
# projector and the board. The technician PIN of the demo is 2013 (never use it in a room).
[panel]
volume = "switcher"
mute = "switcher"
blank = ["projector", "projector-2"]
freeze = ["projector", "board"]
# `python -m tribune.api.pin` made this from 2013, the year the training centre was founded.
technician_pin = "pbkdf2-sha256$200000$74726962756e652d64656d6f2d70696e$d37488f7252a3db2d24034b2a50687515c3993a0b191b8e29c4a1fc7f9303bb6"
"""  # noqa: E501 - the PIN hash is one TOML string


async def run_demo(
    host: str = "127.0.0.1",
    port: int = 8080,
    speed: float = 10.0,
    data_dir: Path | None = None,
    started: Any = None,
    broker: str | None = None,
    room_id: str = "baku/room-1",
) -> int:
    """Start the simulators, write the demo room config and serve it until stopped; with
    `broker`, the room also syncs to the hub there as `room_id`."""
    with tempfile.TemporaryDirectory(prefix="tribune-demo-") as scratch:
        folder = data_dir or Path(scratch)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:

            async def sim(sim_id: str, **kwargs: Any) -> Any:
                return await stack.enter_async_context(
                    start_simulator(sim_id, speed=speed, **kwargs)
                )

            projector = await sim("epson-escvp21", pty=True, link=str(folder / "projector"))
            board = await sim("smart-board", pty=True, link=str(folder / "board"))
            switcher = await sim("extron-sis", pty=True, link=str(folder / "switcher"))
            codec = await sim("cisco-roomos", pty=True, link=str(folder / "codec"))
            monitor = await sim("samsung-mdc", pty=True, link=str(folder / "monitor"))
            projector2 = await sim("pjlink", tcp=("127.0.0.1", 0))
            text = DEMO_TOML.format(
                projector=projector.link,
                board=board.link,
                switcher=switcher.link,
                codec=codec.link,
                monitor=monitor.link,
                projector2=f"tcp://127.0.0.1:{projector2.port}",
            )
            text = text.replace('id = "baku/room-1"', f'id = "{room_id}"', 1)
            if broker is not None:
                text += f'\n[sync]\nbroker = "{broker}"\n'
            config_path = folder / "room.toml"
            await asyncio.to_thread(config_path.write_text, text, encoding="utf-8")
            config = parse_config(text, str(config_path))

            async def announce(service: Service) -> None:
                log.warning(
                    "demo: Baku training room 1 on simulators; panel http://%s:%d/ , API "
                    "http://%s:%d/api/v1/room ; config %s",
                    host,
                    service.port,
                    host,
                    service.port,
                    config_path,
                )
                if started is not None:
                    await started(service)

            return await run_service(
                config, folder, config_dir=folder, host=host, port=port, started=announce
            )
