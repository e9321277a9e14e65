"""Fault injection, through the in-process `Faults` object, over TCP and a pty."""

from __future__ import annotations

import asyncio
import time

from tests.sim.sim_clients import PtyClient, TcpClient
from tests.sim.sim_clients import pjlink_ask as ask
from tests.sim.sim_clients import pjlink_connect as connect
from tribune.sim import RunningSimulator, start_simulator


async def test_drop_next_replies(pjlink: RunningSimulator) -> None:
    client = await connect(pjlink)
    pjlink.faults.drop = 2
    await client.send(b"%1POWR ?\r%1NAME ?\r%1INF1 ?\r")
    assert await client.read_until(b"\r") == b"%1INF1=TRIBUNE\r"
    assert pjlink.faults.drop == 0
    await client.close()


async def test_garbage_keeps_length_and_terminator(pjlink: RunningSimulator) -> None:
    client = await connect(pjlink)
    pjlink.faults.garbage = 1
    await client.send(b"%1POWR ?\r")
    reply = await client.read_exactly(len(b"%1POWR=0\r"))
    assert reply[-1:] == b"\r"
    assert await ask(client, b"%1POWR ?\r") == b"%1POWR=0\r"
    await client.close()


async def test_delay_keeps_order(pjlink: RunningSimulator) -> None:
    client = await connect(pjlink)
    pjlink.faults.delay = 0.2
    started = time.monotonic()
    await client.send(b"%1POWR ?\r%1NAME ?\r")
    assert await client.read_until(b"\r") == b"%1POWR=0\r"
    assert await client.read_until(b"\r") == b"%1NAME=ROOM-101\r"
    assert time.monotonic() - started >= 0.4
    await client.close()


async def test_hang_up_on_tcp(pjlink: RunningSimulator) -> None:
    client = await connect(pjlink)
    pjlink.faults.hang_up_after = 2
    assert await ask(client, b"%1POWR ?\r") == b"%1POWR=0\r"
    await client.send(b"%1POWR ?\r")
    assert await client.closed_by_peer()
    await client.close()
    client = await connect(pjlink)  # the device still accepts new connections
    assert await ask(client, b"%1POWR ?\r") == b"%1POWR=0\r"
    await client.close()


async def test_busy_until_cleared(pjlink: RunningSimulator) -> None:
    client = await connect(pjlink)
    pjlink.faults.busy = True
    assert await ask(client, b"%1POWR 1\r") == b"%1POWR=ERR3\r"
    assert await ask(client, b"%1NAME ?\r") == b"%1NAME=ERR3\r"
    pjlink.faults.clear()
    assert await ask(client, b"%1NAME ?\r") == b"%1NAME=ROOM-101\r"
    await client.close()


async def test_busy_replies_of_binary_protocols() -> None:
    async with start_simulator("samsung-mdc", tcp=("127.0.0.1", 0)) as sim:
        sim.faults.busy = True
        client = await TcpClient.connect(sim.port)
        await client.send(bytes.fromhex("aa 11 01 00 12"))
        assert (await client.read_exactly(8)).hex(" ") == "aa ff 01 03 4e 11 01 63"
        await client.close()
    async with start_simulator("nec-projector", tcp=("127.0.0.1", 0)) as sim:
        sim.faults.busy = True
        client = await TcpClient.connect(sim.port)
        await client.send(bytes.fromhex("02 00 00 00 00 02"))
        assert (await client.read_exactly(8)).hex(" ") == "a2 00 01 20 02 02 0e d5"
        await client.close()


async def test_hang_up_on_pty_unplugs_it() -> None:
    async with start_simulator("epson-escvp21", pty=True) as sim:
        port = PtyClient(sim.path)
        try:
            sim.faults.hang_up_after = 1
            await port.send(b"PWR?\r")
            await asyncio.sleep(0.05)
            assert sim.pty is not None
            assert not sim.pty.plugged
        finally:
            port.close()
