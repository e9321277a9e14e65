"""Kramer Protocol 3000 simulator over a real TCP socket."""

from __future__ import annotations

from tests.sim.sim_clients import PtyClient, TcpClient
from tribune.sim import start_simulator
from tribune.sim.kramer import KramerSimulator


async def ask(client: TcpClient | PtyClient, request: bytes) -> bytes:
    await client.send(request)
    return await client.read_until(b"\r\n")


async def test_routing_queries_and_errors() -> None:
    async with start_simulator("kramer-p3000", tcp=("127.0.0.1", 0)) as sim:
        client = await TcpClient.connect(sim.port)
        assert await ask(client, b"#\r") == b"~01@ OK\r\n"
        assert await ask(client, b"#VID 1>2\r") == b"~01@VID 1>2 OK\r\n"
        assert await ask(client, b"#VID? 2\r") == b"~01@VID 1>2\r\n"
        assert await ask(client, b"#vid 3>1,4>4\r") == b"~01@VID 3>1,4>4 OK\r\n"
        assert await ask(client, b"#VID? *\r") == b"~01@VID 3>1,1>2,1>3,4>4\r\n"
        assert await ask(client, b"#VID 9>2\r") == b"~01@VID ERR 003\r\n"
        assert await ask(client, b"#VID 12\r") == b"~01@VID ERR 001\r\n"
        assert await ask(client, b"#FOO\r") == b"~01@FOO ERR 002\r\n"
        assert await ask(client, b"#MODEL?\r") == b"~01@MODEL VS-44H2\r\n"
        assert await ask(client, b"#VERSION?\r") == b"~01@VERSION 1.12.0152\r\n"
        assert await ask(client, b"#SN?\r") == b"~01@SN 01234567890123\r\n"
        assert await ask(client, b"#AUD-LVL 1,1,70\r") == b"~01@AUD-LVL 1,1,70 OK\r\n"
        assert await ask(client, b"#AUD-LVL? 1,1\r") == b"~01@AUD-LVL 1,1,70\r\n"
        assert await ask(client, b"#AUD-LVL 1,1,101\r") == b"~01@AUD-LVL ERR 003\r\n"
        assert await ask(client, b"#MUTE 2,1\r") == b"~01@MUTE 2,1 OK\r\n"
        assert await ask(client, b"#MUTE? 2\r") == b"~01@MUTE 2,1\r\n"
        assert sim.state.video == [3, 1, 1, 4]
        sim.faults.busy = True
        assert await ask(client, b"#VID 1>1\r") == b"~01@VID ERR 006\r\n"
        await client.close()


async def test_chained_addressed_split_and_front_panel() -> None:
    async with start_simulator("kramer-p3000", tcp=("127.0.0.1", 0)) as sim:
        client = await TcpClient.connect(sim.port)
        await client.send(b"#01@VID 2>1|AUD 3>1\r\n")
        assert await client.read_until(b"\r\n") == b"~01@VID 2>1 OK\r\n"
        assert await client.read_until(b"\r\n") == b"~01@AUD 3>1 OK\r\n"
        await client.send(b"#02@VID 2>1\r")  # another machine
        assert await client.read_nothing() == b""
        await client.send_slowly(b"#VID? 1\r")
        assert await client.read_until(b"\r\n") == b"~01@VID 2>1\r\n"
        assert isinstance(sim.sim, KramerSimulator)
        sim.sim.front_panel_switch(4, 3)
        assert await client.read_until(b"\r\n") == b"~01@AV 4>3\r\n"
        await client.close()
