"""NEC simulator over a real pty at 38400 baud, frames from the NEC command reference."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.sim.sim_clients import PtyClient
from tribune.sim import Power, RunningSimulator, start_simulator

POWER_ON = bytes.fromhex("02 00 00 00 00 02")
POWER_OFF = bytes.fromhex("02 01 00 00 00 03")
RUNNING_SENSE = bytes.fromhex("00 81 00 00 00 81")
INPUT_HDMI2 = bytes.fromhex("02 03 00 00 02 01 1b 23")
LAMP_HOURS = bytes.fromhex("03 96 00 00 02 00 01 9c")


@pytest.fixture
async def nec() -> AsyncIterator[RunningSimulator]:
    async with start_simulator("nec-projector", pty=True, baud=38400, speed=30) as sim:
        yield sim


@pytest.fixture
def port(nec: RunningSimulator) -> Iterator[PtyClient]:
    client = PtyClient(nec.path, baud=38400)
    yield client
    client.close()


async def ask(port: PtyClient, request: bytes, size: int) -> str:
    await port.send(request)
    return (await port.read_exactly(size)).hex(" ")


async def test_power_on_warm_up_and_inhibited_power_off(
    nec: RunningSimulator, port: PtyClient
) -> None:
    assert await ask(port, RUNNING_SENSE, 7) == "20 81 01 20 01 00 c3"
    assert await ask(port, INPUT_HDMI2, 8) == "a2 03 01 20 02 02 03 cd"
    assert await ask(port, POWER_ON, 6) == "22 00 01 20 00 43"
    assert await ask(port, RUNNING_SENSE, 7) == "20 81 01 20 01 8a 4d"
    assert await ask(port, POWER_OFF, 8) == "a2 01 01 20 02 02 0d d5"
    await asyncio.sleep(nec.sim.power.remaining + 0.05)
    assert await ask(port, RUNNING_SENSE, 7) == "20 81 01 20 01 02 c5"
    assert await ask(port, INPUT_HDMI2, 7) == "22 03 01 20 01 00 47"
    assert nec.state.input == 0x1B
    assert await ask(port, POWER_OFF, 6) == "22 01 01 20 00 44"
    assert nec.sim.power.state is Power.COOLING


async def test_queries_errors_and_bad_checksum(nec: RunningSimulator, port: PtyClient) -> None:
    nec.sim.power.force(Power.ON)
    assert await ask(port, LAMP_HOURS, 12) == "23 96 01 20 06 00 01 20 c9 43 00 0d"
    assert await ask(port, bytes.fromhex("00 99 00 00 00 99"), 8) == "a0 99 01 20 02 00 00 5c"
    assert await ask(port, bytes.fromhex("02 03 00 00 02 01 7f 87"), 8) == "a2 03 01 20 02 01 01 ca"
    assert await ask(port, bytes.fromhex("02 10 00 00 00 12"), 6) == "22 10 01 20 00 53"
    assert nec.state.picture_mute
    await port.send(bytes.fromhex("02 00 00 00 00 03"))  # wrong checksum: ignored
    assert await port.read_nothing() == b""
    model = await ask(port, bytes.fromhex("00 85 00 00 01 04 8a"), 38)
    assert model.startswith("20 85 01 20 20 " + b"NP-P554U".hex(" "))


async def test_input_and_mute_status_and_lamp_hours(nec: RunningSimulator, port: PtyClient) -> None:
    """078-3 and 078-4 answer 16 data bytes; 037-7 gives lamp 1 usage in hours, little-endian."""
    nec.sim.power.force(Power.ON)
    input_status = bytes.fromhex("00 85 00 00 01 02 88")
    # DATA03 selection signal type 1 (terminal 1), DATA04 type 2 (21 = HDMI).
    assert (await ask(port, input_status, 22)).startswith("20 85 01 20 10 00 00 01 21")
    assert await ask(port, INPUT_HDMI2, 7) == "22 03 01 20 01 00 47"
    assert (await ask(port, input_status, 22)).startswith("20 85 01 20 10 00 00 02 21")
    assert await ask(port, bytes.fromhex("02 12 00 00 00 14"), 6) == "22 12 01 20 00 55"
    mute_status = bytes.fromhex("00 85 00 00 01 03 89")
    assert (await ask(port, mute_status, 22)).startswith("20 85 01 20 10 00 01 00")
    lamp_hours = bytes.fromhex("03 9b 00 00 03 00 02 01 a4")
    assert await ask(port, lamp_hours, 13) == "23 9b 01 20 07 00 02 01 d2 04 00 00 bf"


async def test_split_bytes_and_frames_in_one_chunk(nec: RunningSimulator, port: PtyClient) -> None:
    await port.send_slowly(RUNNING_SENSE)
    assert (await port.read_exactly(7)).hex(" ") == "20 81 01 20 01 00 c3"
    await port.send(RUNNING_SENSE + POWER_ON + RUNNING_SENSE)
    replies = (await port.read_exactly(20)).hex(" ")
    assert replies == "20 81 01 20 01 00 c3 22 00 01 20 00 43 20 81 01 20 01 8a 4d"


async def test_wrong_baud_is_ignored(nec: RunningSimulator) -> None:
    client = PtyClient(nec.path, baud=9600)
    try:
        await client.send(RUNNING_SENSE)
        assert await client.read_nothing() == b""
        client.set_baud(38400)
        await client.send(RUNNING_SENSE)
        assert (await client.read_exactly(7)).hex(" ") == "20 81 01 20 01 00 c3"
    finally:
        client.close()
