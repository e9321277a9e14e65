"""Samsung MDC simulator over a real TCP socket, frames from the MDC protocol document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.sim.sim_clients import TcpClient
from tribune.sim import Power, RunningSimulator, start_simulator


@pytest.fixture
async def mdc() -> AsyncIterator[RunningSimulator]:
    async with start_simulator("samsung-mdc", tcp=("127.0.0.1", 0), speed=20) as sim:
        yield sim


async def ask(client: TcpClient, request: str, size: int) -> str:
    await client.send(bytes.fromhex(request))
    return (await client.read_exactly(size)).hex(" ")


async def test_power_status_and_nak_while_off(mdc: RunningSimulator) -> None:
    client = await TcpClient.connect(mdc.port)
    assert await ask(client, "aa 11 01 00 12", 8) == "aa ff 01 03 41 11 00 55"
    assert await ask(client, "aa 00 01 00 01", 14) == "aa ff 01 09 41 00 00 14 00 21 10 00 00 8f"
    assert await ask(client, "aa 12 01 01 1e 32", 8) == "aa ff 01 03 4e 12 01 64"
    assert await ask(client, "aa 11 01 01 01 14", 8) == "aa ff 01 03 41 11 01 56"
    assert await ask(client, "aa 12 01 01 1e 32", 8) == "aa ff 01 03 4e 12 01 64"  # booting
    await asyncio.sleep(mdc.sim.power.remaining + 0.05)
    assert await ask(client, "aa 12 01 01 1e 32", 8) == "aa ff 01 03 41 12 1e 74"
    assert await ask(client, "aa 14 01 01 23 39", 8) == "aa ff 01 03 41 14 23 7b"
    assert mdc.state.volume == 30
    assert mdc.state.input == 0x23
    await client.close()


async def test_identity_bad_checksum_other_id_and_split_bytes(mdc: RunningSimulator) -> None:
    mdc.sim.power.force(Power.ON)
    client = await TcpClient.connect(mdc.port)
    serial = b"0DQV3CAK500123"
    await client.send(bytes.fromhex("aa 0b 01 00 0c"))
    reply = await client.read_exactly(7 + len(serial))
    assert reply[:6] == bytes.fromhex("aa ff 01") + bytes([2 + len(serial)]) + b"A\x0b"
    assert reply[6:-1] == serial
    await client.send(bytes.fromhex("aa 11 01 00 13"))  # bad checksum
    await client.send(bytes.fromhex("aa 11 02 00 13"))  # display 2: not us
    assert await client.read_nothing() == b""
    await client.send_slowly(bytes.fromhex("aa 11 01 00 12"))
    assert (await client.read_exactly(8)).hex(" ") == "aa ff 01 03 41 11 01 56"
    await client.send(bytes.fromhex("aa 11 01 00 12 aa 13 01 00 14"))
    assert (await client.read_exactly(16)).hex(" ") == (
        "aa ff 01 03 41 11 01 56 aa ff 01 03 41 13 00 57"
    )
    await client.close()
