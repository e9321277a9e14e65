"""Sony projector simulator over a real 8E1 pty and TCP, blocks from the VPL protocol manual."""

from __future__ import annotations

import asyncio
import termios
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.sim.sim_clients import PtyClient, TcpClient
from tribune.sim import Power, RunningSimulator, start_simulator

ACK = "a9 00 00 03 00 00 03 9a"
NOT_APPLICABLE = "a9 01 0a 03 00 00 0b 9a"
STATUS_POWER = "a9 01 02 01 00 00 03 9a"
POWER_ON = "a9 01 30 00 00 01 31 9a"
POWER_OFF = "a9 01 30 00 00 00 31 9a"


def set_8e1(client: PtyClient, baud: int = 38400) -> None:
    """38400 baud, 8 data bits, even parity, 1 stop bit, as the manual specifies."""
    attrs = termios.tcgetattr(client.fd)
    cflag = attrs[2] & ~(termios.CSIZE | termios.PARODD | termios.CSTOPB)
    attrs[2] = cflag | termios.CS8 | termios.PARENB
    attrs[4] = attrs[5] = getattr(termios, f"B{baud}")
    try:
        termios.tcsetattr(client.fd, termios.TCSANOW, attrs)
    except termios.error:  # this kernel's pty refuses parity: the simulator then ignores it
        attrs[2] &= ~termios.PARENB
        termios.tcsetattr(client.fd, termios.TCSANOW, attrs)


@pytest.fixture
async def sony() -> AsyncIterator[RunningSimulator]:
    async with start_simulator(
        "sony-projector", pty=True, baud=38400, tcp=("127.0.0.1", 0), speed=40
    ) as sim:
        yield sim


@pytest.fixture
def port(sony: RunningSimulator) -> Iterator[PtyClient]:
    client = PtyClient(sony.path)
    set_8e1(client)
    yield client
    client.close()


async def ask(client: PtyClient | TcpClient, request: str) -> str:
    await client.send(bytes.fromhex(request))
    return (await client.read_exactly(8)).hex(" ")


async def test_power_cycle_reports_start_up_phases_and_cooling(
    sony: RunningSimulator, port: PtyClient
) -> None:
    assert await ask(port, STATUS_POWER) == "a9 01 02 02 00 00 03 9a"  # standby
    assert await ask(port, "a9 00 01 01 00 00 01 9a") == NOT_APPLICABLE  # input in standby
    assert await ask(port, POWER_ON) == ACK
    assert await ask(port, STATUS_POWER) == "a9 01 02 02 00 01 03 9a"  # start up
    assert await ask(port, POWER_OFF) == NOT_APPLICABLE  # not while starting up
    await asyncio.sleep(sony.sim.power.remaining - 0.2)
    assert await ask(port, STATUS_POWER) == "a9 01 02 02 00 02 03 9a"  # startup lamp
    await asyncio.sleep(sony.sim.power.remaining + 0.05)
    assert await ask(port, STATUS_POWER) == "a9 01 02 02 00 03 03 9a"  # power on
    assert await ask(port, "a9 17 2f 00 00 00 3f 9a") == ACK  # SIRCS POWER OFF key
    assert await ask(port, STATUS_POWER) == "a9 01 02 02 00 04 07 9a"  # cooling1
    assert await ask(port, POWER_ON) == NOT_APPLICABLE
    assert sony.sim.power.state is Power.COOLING


async def test_input_muting_lamp_and_naks(sony: RunningSimulator, port: PtyClient) -> None:
    sony.sim.power.force(Power.ON)
    assert await ask(port, "a9 00 01 00 00 03 03 9a") == ACK  # input B
    assert await ask(port, "a9 00 01 01 00 00 01 9a") == "a9 00 01 02 00 03 03 9a"
    assert sony.state.input == 3
    assert await ask(port, "a9 00 30 00 00 01 31 9a") == ACK  # picture muting on
    assert await ask(port, "a9 00 30 01 00 00 31 9a") == "a9 00 30 02 00 01 33 9a"
    assert await ask(port, "a9 01 13 01 00 00 13 9a") == "a9 01 13 02 03 e8 fb 9a"  # 1000 h
    assert await ask(port, "a9 01 1d 01 00 00 1d 9a") == "a9 01 1d 02 01 03 1f 9a"  # 1.03
    assert await ask(port, "a9 00 01 00 00 09 09 9a") == "a9 01 06 03 00 00 07 9a"  # range
    assert await ask(port, "a9 00 99 00 00 00 99 9a") == "a9 01 01 03 00 00 03 9a"  # undefined
    assert await ask(port, "a9 00 01 05 00 00 05 9a") == "a9 01 05 03 00 00 07 9a"  # select
    assert await ask(port, "a9 01 02 01 00 00 00 9a") == "a9 f0 10 03 00 00 f3 9a"  # check sum


async def test_one_byte_at_a_time_resync_and_wrong_baud(
    sony: RunningSimulator, port: PtyClient
) -> None:
    await port.send_slowly(bytes.fromhex(STATUS_POWER))
    assert (await port.read_exactly(8)).hex(" ") == "a9 01 02 02 00 00 03 9a"
    await port.send(bytes.fromhex("00 ff a9 01 02 01 00 00 03 00") + bytes.fromhex(STATUS_POWER))
    assert (await port.read_exactly(8)).hex(" ") == "a9 01 02 02 00 00 03 9a"
    assert await port.read_nothing(0.1) == b""
    client = PtyClient(sony.path, baud=9600)  # the projector hears only noise
    try:
        await client.send(bytes.fromhex(STATUS_POWER))
        assert await client.read_nothing() == b""
    finally:
        client.close()


async def test_tcp_faults_busy_drop_and_hang_up(sony: RunningSimulator) -> None:
    client = await TcpClient.connect(sony.port)
    sony.faults.busy = True
    assert await ask(client, POWER_ON) == NOT_APPLICABLE
    sony.faults.clear()
    sony.faults.drop = 1
    await client.send(bytes.fromhex(STATUS_POWER))
    assert await client.read_nothing() == b""
    assert await ask(client, STATUS_POWER) == "a9 01 02 02 00 00 03 9a"
    sony.faults.hang_up_after = 1
    await client.send(bytes.fromhex(STATUS_POWER))
    assert await client.closed_by_peer()
    await client.close()


async def test_pty_without_line_check_opens_even_where_parity_is_refused() -> None:
    async with start_simulator("sony-projector", pty=True) as sim:
        client = PtyClient(sim.path)
        try:
            assert await ask(client, STATUS_POWER) == "a9 01 02 02 00 00 03 9a"
        finally:
            client.close()
