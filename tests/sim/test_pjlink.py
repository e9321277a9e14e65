"""PJLink simulator over a real TCP socket, with byte vectors from the PJLink specification."""

from __future__ import annotations

import asyncio
import hashlib

from tests.sim.sim_clients import TcpClient
from tests.sim.sim_clients import pjlink_ask as ask
from tests.sim.sim_clients import pjlink_connect as connect
from tribune.sim import Power, RunningSimulator, start_simulator


async def test_power_cycle_with_busy_answers(pjlink: RunningSimulator) -> None:
    client = await connect(pjlink)
    assert await ask(client, b"%1POWR ?\r") == b"%1POWR=0\r"
    assert await ask(client, b"%1INPT 31\r") == b"%1INPT=ERR3\r"
    assert await ask(client, b"%1POWR 1\r") == b"%1POWR=OK\r"
    assert await ask(client, b"%1POWR ?\r") == b"%1POWR=3\r"
    assert await ask(client, b"%1POWR 0\r") == b"%1POWR=ERR3\r"
    assert await ask(client, b"%1INPT 32\r") == b"%1INPT=ERR3\r"
    while await ask(client, b"%1POWR ?\r") == b"%1POWR=3\r":
        await asyncio.sleep(0.1)  # poll: an idle connection would be closed before warm-up ends
    assert await ask(client, b"%1POWR ?\r") == b"%1POWR=1\r"
    assert await ask(client, b"%1LAMP ?\r") == b"%1LAMP=1234 1\r"
    assert await ask(client, b"%1POWR 0\r") == b"%1POWR=OK\r"
    assert await ask(client, b"%1POWR ?\r") == b"%1POWR=2\r"
    assert await ask(client, b"%1POWR 1\r") == b"%1POWR=ERR3\r"
    await client.close()


async def test_inputs_mutes_and_errors(pjlink: RunningSimulator) -> None:
    pjlink.sim.power.force(Power.ON)
    client = await connect(pjlink)
    assert await ask(client, b"%1INPT 12\r") == b"%1INPT=OK\r"
    assert await ask(client, b"%1INPT ?\r") == b"%1INPT=12\r"
    assert pjlink.state.input == "12"
    assert await ask(client, b"%1INPT 99\r") == b"%1INPT=ERR2\r"
    assert await ask(client, b"%1AVMT 31\r") == b"%1AVMT=OK\r"
    assert await ask(client, b"%1AVMT ?\r") == b"%1AVMT=31\r"
    assert await ask(client, b"%1AVMT 20\r") == b"%1AVMT=OK\r"
    assert await ask(client, b"%1AVMT ?\r") == b"%1AVMT=11\r"
    assert await ask(client, b"%1AVMT 40\r") == b"%1AVMT=ERR2\r"
    assert await ask(client, b"%1XXXX ?\r") == b"%1XXXX=ERR1\r"
    assert await ask(client, b"%1SNUM ?\r") == b"%1SNUM=ERR1\r"
    assert await ask(client, b"%2SNUM ?\r") == b"%2SNUM=ERR1\r"
    assert await ask(client, b"%1ERST ?\r") == b"%1ERST=000000\r"
    assert await ask(client, b"%1INST ?\r") == b"%1INST=11 12 31 32 51\r"
    assert await ask(client, b"%1CLSS ?\r") == b"%1CLSS=1\r"
    assert await ask(client, b"%1INF1 ?\r") == b"%1INF1=TRIBUNE\r"
    await client.close()


async def test_class2_commands() -> None:
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=30, class_=2) as sim:
        sim.sim.power.force(Power.ON)
        client = await connect(sim)
        assert await ask(client, b"%1CLSS ?\r") == b"%1CLSS=2\r"
        assert await ask(client, b"%2SNUM ?\r") == b"%2SNUM=TRB0000001\r"
        assert await ask(client, b"%2INNM ?31\r") == b"%2INNM=HDMI 1\r"
        assert await ask(client, b"%2INNM ?77\r") == b"%2INNM=ERR2\r"
        assert await ask(client, b"%2IRES ?\r") == b"%2IRES=1920x1080\r"
        assert await ask(client, b"%2FREZ 1\r") == b"%2FREZ=OK\r"
        assert await ask(client, b"%2FREZ ?\r") == b"%2FREZ=1\r"
        assert await ask(client, b"%2SVOL 1\r") == b"%2SVOL=OK\r"
        assert sim.state.speaker_volume == 11
        assert await ask(client, b"%2SVOL ?\r") == b"%2SVOL=ERR2\r"
        assert await ask(client, b"%1FREZ ?\r") == b"%1FREZ=ERR1\r"
        await client.close()


async def test_class2_lkup_and_power_notifications() -> None:
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[bytes] = asyncio.Queue()

    class Listener(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            received.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Listener, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with start_simulator(
            "pjlink", tcp=("127.0.0.1", 0), speed=30, class_=2, notify=("127.0.0.1", port)
        ) as sim:
            assert await asyncio.wait_for(received.get(), 2) == b"%2LKUP=00:1A:2B:3C:4D:5E\r"
            client = await connect(sim)
            assert await ask(client, b"%1POWR 1\r") == b"%1POWR=OK\r"
            assert await asyncio.wait_for(received.get(), 2) == b"%2POWR=3\r"
            assert await asyncio.wait_for(received.get(), 3) == b"%2POWR=1\r"
            await client.close()
    finally:
        transport.close()


async def test_auth_success_and_erra() -> None:
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=30, password="secret") as sim:
        client = await TcpClient.connect(sim.port)
        greeting = await client.read_until(b"\r")
        assert greeting[:9] == b"PJLINK 1 "
        assert len(greeting) == 18
        digest = hashlib.md5(greeting[9:17] + b"secret").hexdigest().encode()
        assert await ask(client, digest + b"%1POWR ?\r") == b"%1POWR=0\r"
        assert await ask(client, b"%1NAME ?\r") == b"%1NAME=ROOM-101\r"
        await client.close()

        client = await TcpClient.connect(sim.port)
        greeting = await client.read_until(b"\r")
        wrong = hashlib.md5(greeting[9:17] + b"guess").hexdigest().encode()
        assert await ask(client, wrong + b"%1POWR ?\r") == b"PJLINK ERRA\r"
        assert await client.closed_by_peer()
        await client.close()

        client = await TcpClient.connect(sim.port)
        await client.read_until(b"\r")
        assert await ask(client, b"%1POWR ?\r") == b"PJLINK ERRA\r"
        assert await client.closed_by_peer()
        await client.close()


async def test_idle_connection_is_closed(pjlink: RunningSimulator) -> None:
    client = await connect(pjlink)
    assert await client.closed_by_peer(timeout=3)
    await client.close()


async def test_one_byte_at_a_time_and_many_per_chunk(pjlink: RunningSimulator) -> None:
    client = await connect(pjlink)
    await client.send_slowly(b"%1POWR ?\r")
    assert await client.read_until(b"\r") == b"%1POWR=0\r"
    await client.send(b"%1POWR ?\r%1NAME ?\r%1INF2 ?\r")
    assert await client.read_until(b"\r") == b"%1POWR=0\r"
    assert await client.read_until(b"\r") == b"%1NAME=ROOM-101\r"
    assert await client.read_until(b"\r") == b"%1INF2=SIM-PJ\r"
    await client.close()
