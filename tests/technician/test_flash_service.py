"""`tribune serve` as a process: installed profiles override the shipped ones at start-up, and a
flash through the CLI (token from the data dir) survives a restart."""

from __future__ import annotations

from pathlib import Path

from tests.room.test_crash_restart import Service, free_port, http
from tests.technician.conftest import tribune
from tests.technician.flashing import epson_v2
from tribune.sim import start_simulator

ROOM = """
[room]
id = "baku/room-3"
name = "Service flash room"

[devices.projector]
profile = "epson-escvp21"
port = "{projector}"
"""


async def test_serve_loads_installed_profiles_and_keeps_a_flash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    staged = tmp_path / "epson-escvp21.yaml"
    staged.write_text(epson_v2(), encoding="utf-8")
    installed = await tribune("profile", "install", str(staged), "--data-dir", str(data))
    assert installed.code == 0, installed.err
    v3 = tmp_path / "epson-v3.yaml"
    v3.write_text(epson_v2().replace('version: "2"', 'version: "3"'), encoding="utf-8")
    async with start_simulator(
        "epson-escvp21", pty=True, link=str(tmp_path / "projector"), speed=50
    ):
        config = tmp_path / "room.toml"
        config.write_text(ROOM.format(projector=tmp_path / "projector"), encoding="utf-8")
        port = free_port()
        service = Service(config, data, port)
        await service.start()
        try:
            _, device = await http("GET", f"{service.base}/devices/projector")
            assert device["profile_version"] == "2"  # the installed one, not the shipped 1
            assert "freeze_now" in device["actions"]

            flashed = await tribune(
                "profile", "flash", str(v3), "--device", "projector",
                "--url", f"http://127.0.0.1:{port}", "--data-dir", str(data),
            )  # fmt: skip
            assert flashed.code == 0, flashed.out + flashed.err
            _, device = await http("GET", f"{service.base}/devices/projector")
            assert device["profile_version"] == "3"

            await service.stop()
            await service.start()
            _, device = await http("GET", f"{service.base}/devices/projector")
            assert device["profile_version"] == "3"
        finally:
            await service.stop()
