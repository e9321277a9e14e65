"""SMART Board simulator over a real pty at 19200 baud."""

from __future__ import annotations

import asyncio

from tests.sim.sim_clients import PtyClient
from tribune.sim import Power, start_simulator
from tribune.sim.smart import SmartSimulator


async def ask(port: PtyClient, request: bytes) -> bytes:
    await port.send(request)
    return await port.read_until(b">")


async def test_power_states_and_settings() -> None:
    async with start_simulator("smart-board", pty=True, baud=19200, speed=20) as sim:
        port = PtyClient(sim.path, baud=19200)
        try:
            assert await ask(port, b"\r") == b">"
            assert await ask(port, b"get powerstate\r") == b"powerstate=ready\r\n>"
            assert await ask(port, b"get volume\r") == b"invalid cmd: getvolume\r\n>"
            assert await ask(port, b"set powerstate=on\r") == b"powerstate=on\r\n>"
            assert await ask(port, b"get powerstate\r") == b"powerstate=ready\r\n>"  # booting
            assert await ask(port, b"set input=hdmi2\r") == b"invalid cmd: setinput=hdmi2\r\n>"
            await asyncio.sleep(sim.sim.power.remaining + 0.05)
            assert await port.read_until(b"\r\n") == b"#powerstate=on\r\n"  # no prompt
            assert await ask(port, b"GET POWERSTATE\r") == b"powerstate=on\r\n>"
            assert await ask(port, b"set input = hdmi2\r") == b"input=hdmi2\r\n>"
            assert await ask(port, b"get input\r") == b"input=hdmi2\r\n>"
            assert await ask(port, b"set volume=65\r") == b"volume=65\r\n>"
            assert await ask(port, b"set volume+5\r") == b"volume=70\r\n>"
            assert await ask(port, b"set volume-15\r") == b"volume=55\r\n>"
            assert await ask(port, b"set volume=-50\r") == b"invalid cmd: setvolume=-50\r\n>"
            assert await ask(port, b"set mute=on\r") == b"mute=on\r\n>"
            assert await ask(port, b"set volume=40\r") == b"volume=40\r\n>"
            assert await ask(port, b"get mute\r") == b"mute=off\r\n>"
            assert await ask(port, b"set videofreeze=on\r") == b"videofreeze=on\r\n>"
            assert await ask(port, b"get fwversion\r") == b"fwversion=3.3.12.0\r\n>"
            assert await ask(port, b"get modelnum\r") == b"modelnum=SBID-6275S-V3\r\n>"
            assert await ask(port, b"get serialnum\r") == b"serialnum=SB6275SV3A12345\r\n>"
            assert await ask(port, b"get partnum\r") == b"partnum=1031546-01\r\n>"
            assert await ask(port, b"set partnum=1\r") == b"invalid cmd: setpartnum=1\r\n>"
            assert await ask(port, b"set powerstate=powersave\r") == b"powerstate=powersave\r\n>"
            await asyncio.sleep(sim.sim.power.remaining + 0.05)
            assert await port.read_until(b"\r\n") == b"#powerstate=powersave\r\n"
            await port.send(b"get powerstate\r")
            assert await port.read_nothing() == b""  # low power: deaf to RS-232
        finally:
            port.close()


async def test_split_and_chunked_commands() -> None:
    async with start_simulator("smart-board", pty=True) as sim:
        port = PtyClient(sim.path)
        try:
            await port.send_slowly(b"get powerstate\r")
            assert await port.read_until(b">") == b"powerstate=ready\r\n>"
            await port.send(b"get powerstate\r\rget powerstate\r")
            assert await port.read_until(b">") == b"powerstate=ready\r\n>"
            assert await port.read_until(b">") == b">"
            assert await port.read_until(b">") == b"powerstate=ready\r\n>"
        finally:
            port.close()


async def test_front_panel_changes_are_announced() -> None:
    async with start_simulator("smart-board", pty=True, speed=20) as sim:
        port = PtyClient(sim.path)
        try:
            board = sim.sim
            assert isinstance(board, SmartSimulator)
            board.power.force(Power.ON)
            board.front_panel("input", "android")
            assert await port.read_until(b"\r\n") == b"#input=android\r\n"
            board.front_panel("volume", "40")
            assert await port.read_until(b"\r\n") == b"#volume=40\r\n"
            assert await ask(port, b"get input\r") == b"input=android\r\n>"
            assert await ask(port, b"set input=dp1\r") == b"invalid cmd: setinput=dp1\r\n>"
        finally:
            port.close()
