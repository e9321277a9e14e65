"""Panasonic projector simulator over a real pty and TCP, frames from the RS-232C spec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.sim.sim_clients import PtyClient, TcpClient
from tribune.sim import Power, RunningSimulator, start_simulator


@pytest.fixture
async def panasonic() -> AsyncIterator[RunningSimulator]:
    async with start_simulator(
        "panasonic-projector", pty=True, baud=9600, tcp=("127.0.0.1", 0), speed=60
    ) as sim:
        yield sim


async def ask(client: PtyClient | TcpClient, request: bytes) -> bytes:
    await client.send(request)
    return await client.read_until(b"\x03")


async def test_power_cycle_and_refusals_during_transitions(panasonic: RunningSimulator) -> None:
    port = PtyClient(panasonic.path, baud=9600)
    try:
        assert await ask(port, b"\x02ADZZ;QPW\x03") == b"\x02000\x03"
        assert await ask(port, b"\x02ADZZ;IIS:RG1\x03") == b"\x02ER401\x03"  # standby
        assert await ask(port, b"\x02ADZZ;PON\x03") == b"\x02PON\x03"
        assert await ask(port, b"\x02ADZZ;QPW\x03") == b"\x02001\x03"  # warming up
        assert await ask(port, b"\x02ADZZ;POF\x03") == b"\x02ER401\x03"
        assert await ask(port, b"\x02ADZZ;OSH:1\x03") == b"\x02ER401\x03"
        await asyncio.sleep(panasonic.sim.power.remaining + 0.05)
        assert await ask(port, b"\x02ADZZ;IIS:RG1\x03") == b"\x02IIS:RG1\x03"
        assert await ask(port, b"\x02ADZZ;QIN\x03") == b"\x02RG1\x03"
        assert await ask(port, b"\x02ADZZ;POF\x03") == b"\x02POF\x03"
        assert await ask(port, b"\x02ADZZ;QPW\x03") == b"\x02000\x03"  # cooling down
        assert await ask(port, b"\x02ADZZ;PON\x03") == b"\x02ER401\x03"
        assert panasonic.sim.power.state is Power.COOLING
    finally:
        port.close()


async def test_shutter_lamp_errors_and_addressing(panasonic: RunningSimulator) -> None:
    panasonic.sim.power.force(Power.ON)
    client = await TcpClient.connect(panasonic.port)
    assert await ask(client, b"\x02ADZZ;OSH:1\x03") == b"\x02OSH:1\x03"
    assert await ask(client, b"\x02ADZZ;QSH\x03") == b"\x021\x03"
    assert await ask(client, b"\x02ADZZ;Q$L\x03") == b"\x021234\x03"
    assert await ask(client, b"\x02ADZZ;Q$L:1\x03") == b"\x021234\x03"
    assert await ask(client, b"\x02ADZZ;Q$S\x03") == b"\x022\x03"  # lamp on
    assert await ask(client, b"\x02ADZZ;OFZ:1\x03") == b"\x02OFZ:1\x03"
    assert await ask(client, b"\x02ADZZ;QFZ\x03") == b"\x021\x03"
    assert await ask(client, b"\x02ADZZ;AVL:040\x03") == b"\x02AVL:040\x03"
    assert await ask(client, b"\x02ADZZ;QAV\x03") == b"\x02040\x03"
    assert await ask(client, b"\x02ADZZ;IIS:XYZ\x03") == b"\x02ER402\x03"
    assert await ask(client, b"\x02ADZZ;OSH:7\x03") == b"\x02ER402\x03"
    assert await ask(client, b"\x02ADZZ;ZZZ\x03") == b"\x02ER401\x03"
    assert await ask(client, b"\x02AD01;QPW\x03") == b"\x02001\x03"
    assert await ask(client, b"\x02QPW\x03") == b"\x02001\x03"  # older models: no ID
    await client.send(b"\x02AD02;QPW\x03")  # another projector
    assert await client.read_nothing() == b""
    assert panasonic.state.shutter
    await client.close()


async def test_one_byte_at_a_time_noise_and_faults(panasonic: RunningSimulator) -> None:
    client = await TcpClient.connect(panasonic.port)
    await client.send_slowly(b"\x02ADZZ;QPW\x03")
    assert await client.read_until(b"\x03") == b"\x02000\x03"
    assert await ask(client, b"noise\x03\x02ADZZ;QIN\x03") == b"\x02HD1\x03"
    panasonic.faults.busy = True
    assert await ask(client, b"\x02ADZZ;PON\x03") == b"\x02ER401\x03"
    panasonic.faults.clear()
    panasonic.faults.garbage = 1
    reply = await ask(client, b"\x02ADZZ;QPW\x03")
    assert len(reply) == 5
    assert reply.endswith(b"\x03")
    panasonic.faults.hang_up_after = 1
    await client.send(b"\x02ADZZ;QPW\x03")
    assert await client.closed_by_peer()
    await client.close()
