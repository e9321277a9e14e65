"""Extron SIS simulator over a real TCP socket, commands from the DXP SIS table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.sim.sim_clients import PtyClient, TcpClient
from tribune.sim import RunningSimulator, start_simulator
from tribune.sim.extron import ExtronSimulator


@pytest.fixture
async def extron() -> AsyncIterator[RunningSimulator]:
    async with start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=50) as sim:
        yield sim


async def connect(sim: RunningSimulator) -> TcpClient:
    client = await TcpClient.connect(sim.port)
    banner = await client.read_until(b"\r\n")
    assert banner == b"(c) Copyright 2011, Extron Electronics, DXP 44 HDMI, V1.05, 60-1064-01\r\n"
    await client.read_until(b"\r\n")  # date line
    return client


async def ask(client: TcpClient, request: bytes) -> bytes:
    await client.send(request)
    return await client.read_until(b"\r\n")


async def test_ties_views_and_information(extron: RunningSimulator) -> None:
    client = await connect(extron)
    assert await ask(client, b"1*3!") == b"Out3 In1 All\r\n"
    assert await ask(client, b"2*4%") == b"Out4 In2 Vid\r\n"
    assert await ask(client, b"3*4$") == b"Out4 In3 Aud\r\n"
    assert await ask(client, b"4*1&") == b"Out1 In4 RGB\r\n"
    assert await ask(client, b"4%") == b"2\r\n"
    assert await ask(client, b"4$") == b"3\r\n"
    assert await ask(client, b"2*!") == b"In2 All\r\n"
    assert extron.state.video == [2, 2, 2, 2]
    assert await ask(client, b"0*2!") == b"Out2 In0 All\r\n"
    assert await ask(client, b"3!") == b"In3 All\r\n"
    assert await ask(client, b"I") == b"V4X4 A4X4\r\n"
    assert await ask(client, b"Q") == b"1.05\r\n"
    assert await ask(client, b"N") == b"60-1064-01\r\n"
    assert await ask(client, b"40V") == b"Vol40\r\n"
    assert await ask(client, b"V") == b"40\r\n"
    assert await ask(client, b"100V") == b"Vol100\r\n"
    assert await ask(client, b"-V") == b"Vol99\r\n"
    assert await ask(client, b"1Z") == b"Amt1\r\n"
    assert await ask(client, b"1B") == b"Vmt1\r\n"
    await client.close()


async def test_errors_and_busy(extron: RunningSimulator) -> None:
    client = await connect(extron)
    assert await ask(client, b"9*1!") == b"E01\r\n"
    assert await ask(client, b"1*9!") == b"E12\r\n"
    assert await ask(client, b"101V") == b"E13\r\n"
    assert await ask(client, b"X!") == b"E10\r\n"
    extron.faults.busy = True
    assert await ask(client, b"1*1!") == b"E22\r\n"
    extron.faults.busy = False
    assert await ask(client, b"1*1!") == b"Out1 In1 All\r\n"
    await client.close()


async def test_split_input_chained_commands_and_unsolicited(extron: RunningSimulator) -> None:
    client = await connect(extron)
    await client.send_slowly(b"1*2!")
    assert await client.read_until(b"\r\n") == b"Out2 In1 All\r\n"
    await client.send(b"1*1!02*02&003*003%")
    assert await client.read_until(b"\r\n") == b"Out1 In1 All\r\n"
    assert await client.read_until(b"\r\n") == b"Out2 In2 RGB\r\n"
    assert await client.read_until(b"\r\n") == b"Out3 In3 Vid\r\n"
    assert isinstance(extron.sim, ExtronSimulator)
    extron.sim.reconfig()
    assert await client.read_until(b"\r\n") == b"Reconfig\r\n"
    await client.send(b"1*")
    await asyncio.sleep(0.25)  # more than 10 s at speed 50: the partial command is dropped
    assert await ask(client, b"4!") == b"In4 All\r\n"
    await client.close()


async def test_serial_has_no_banner() -> None:
    async with start_simulator("extron-sis", pty=True) as sim:
        port = PtyClient(sim.path)
        try:
            await port.send(b"Q")
            assert await port.read_until(b"\r\n") == b"1.05\r\n"
        finally:
            port.close()
