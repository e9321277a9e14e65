"""LG signage simulator over real TCP and a pty, lines from the RS-232C protocol chapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.sim.sim_clients import PtyClient, TcpClient
from tribune.sim import Power, RunningSimulator, start_simulator


@pytest.fixture
async def lg() -> AsyncIterator[RunningSimulator]:
    async with start_simulator(
        "lg-display", tcp=("127.0.0.1", 0), pty=True, baud=9600, speed=20
    ) as sim:
        yield sim


async def ask(client: PtyClient | TcpClient, request: bytes) -> bytes:
    await client.send(request)
    return await client.read_until(b"x")


async def test_power_standby_boot_and_settings(lg: RunningSimulator) -> None:
    client = await TcpClient.connect(lg.port)
    assert await ask(client, b"ka 01 ff\r") == b"a 01 OK00x"
    assert await ask(client, b"kf 01 1e\r") == b"f 01 NG01x"  # standby: power only
    assert await ask(client, b"ka 01 01\r") == b"a 01 OK01x"
    assert await ask(client, b"ka 01 ff\r") == b"a 01 OK01x"  # booting: reports on
    assert await ask(client, b"xb 01 ff\r") == b"b 01 NG03x"  # wait more time
    await asyncio.sleep(lg.sim.power.remaining + 0.05)
    assert await ask(client, b"ka 01 ff\r") == b"a 01 OK01x"
    assert await ask(client, b"xb 01 91\r") == b"b 01 OK91x"
    assert await ask(client, b"xb 01 ff\r") == b"b 01 OK91x"
    assert await ask(client, b"kf 01 1e\r") == b"f 01 OK1ex"
    assert await ask(client, b"kf 01 FF\r") == b"f 01 OK1ex"
    assert await ask(client, b"ke 01 00\r") == b"e 01 OK00x"  # 00: volume muted
    assert await ask(client, b"ke 01 ff\r") == b"e 01 OK00x"
    assert await ask(client, b"kd 01 01\r") == b"d 01 OK01x"
    assert (lg.state.input, lg.state.volume, lg.state.volume_mute) == (0x91, 30, True)
    assert lg.state.screen_mute
    assert await ask(client, b"ka 01 00\r") == b"a 01 OK00x"
    assert lg.sim.power.state is Power.COOLING
    await client.close()


async def test_errors_set_ids_and_split_bytes(lg: RunningSimulator) -> None:
    lg.sim.power.force(Power.ON)
    port = PtyClient(lg.path, baud=9600)
    try:
        assert await ask(port, b"kf 01 65\r") == b"f 01 NG01x"  # above 100
        assert await ask(port, b"xb 01 33\r") == b"b 01 NG01x"  # no such input
        assert await ask(port, b"zz 01 ff\r") == b"z 01 NG01x"
        assert await ask(port, b"ka 00 ff\r") == b"a 01 OK01x"  # 00: all sets
        assert await ask(port, b"fy 01 ff\r") == b"y 01 OK105KRAB12345x"
        await port.send(b"ka 02 ff\r")  # another set
        assert await port.read_nothing() == b""
        await port.send_slowly(b"kd 01 ff\r")
        assert await port.read_until(b"x") == b"d 01 OK00x"
    finally:
        port.close()


async def test_busy_and_drop_faults(lg: RunningSimulator) -> None:
    client = await TcpClient.connect(lg.port)
    lg.faults.busy = True
    assert await ask(client, b"ka 01 01\r") == b"a 01 NG03x"
    lg.faults.clear()
    lg.faults.drop = 1
    await client.send(b"ka 01 ff\r")
    assert await client.read_nothing() == b""
    assert await ask(client, b"ka 01 ff\r") == b"a 01 OK00x"
    await client.close()
