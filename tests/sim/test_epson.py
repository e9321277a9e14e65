"""Epson ESC/VP21 simulator: ESC/VP.net handshake over TCP, plain ESC/VP21 over a pty."""

from __future__ import annotations

from tests.sim.sim_clients import PtyClient, TcpClient
from tribune.sim import Power, RunningSimulator, start_simulator

HELLO = b"ESC/VP.net\x10\x03\x00\x00\x00\x00"
OK = b"ESC/VP.net\x10\x03\x00\x00\x20\x00"


def hello_with_password(password: bytes) -> bytes:
    return b"ESC/VP.net\x10\x03\x00\x00\x00\x01" + b"\x01\x01" + password.ljust(16, b"\x00")


async def ask(client: TcpClient | PtyClient, request: bytes) -> bytes:
    await client.send(request)
    return await client.read_until(b":")


def power_of(sim: RunningSimulator) -> Power:
    return sim.sim.power.state


async def connect(port: int) -> TcpClient:
    client = await TcpClient.connect(port)
    await client.send(HELLO)
    assert await client.read_exactly(16) == OK
    return client


async def test_handshake_then_power_cycle() -> None:
    async with start_simulator("epson-escvp21", tcp=("127.0.0.1", 0), speed=30) as sim:
        client = await connect(sim.port)
        assert await ask(client, b"PWR?\r") == b"PWR=04\r:"
        assert await ask(client, b"SOURCE?\r") == b"ERR\r:"
        await client.send(b"PWR ON\r")
        await client.send(b"PWR?\r")  # read after the colon: the projector is busy starting
        other = await connect(sim.port)
        assert await ask(other, b"PWR?\r") == b"PWR=02\r:"
        assert await ask(other, b"SOURCE 30\r") == b"ERR\r:"  # Epson refuses while warming
        assert await ask(other, b"PWR OFF\r") == b"ERR\r:"
        await other.close()
        assert await client.read_until(b":") == b":"  # the colon once the lamp is lit
        assert power_of(sim) is Power.ON
        assert await client.read_until(b":") == b"PWR=01\r:"
        assert await ask(client, b"SOURCE 41\r") == b":"
        assert await ask(client, b"SOURCE?\r") == b"SOURCE=41\r:"
        assert await ask(client, b"SOURCE 99\r") == b"ERR\r:"
        assert await ask(client, b"MUTE ON\r") == b":"
        assert await ask(client, b"MUTE?\r") == b"MUTE=ON\r:"
        assert await ask(client, b"VOL INC\r") == b":"
        assert await ask(client, b"VOL?\r") == b"VOL=121\r:"
        assert await ask(client, b"LAMP?\r") == b"LAMP=1500\r:"
        assert await ask(client, b"ERR?\r") == b"ERR=00\r:"
        assert await ask(client, b"SNO?\r") == b"SNO=X4K9123456L\r:"
        assert await ask(client, b"\r") == b":"
        await client.send(b"PWR OFF\r")
        other = await connect(sim.port)
        assert await ask(other, b"PWR?\r") == b"PWR=03\r:"
        assert await ask(other, b"PWR ON\r") == b"ERR\r:"
        await other.close()
        assert await client.read_until(b":") == b":"  # the colon once it has stopped
        assert power_of(sim) is Power.OFF
        await client.close()


async def test_handshake_password_and_refusals() -> None:
    async with start_simulator("epson-escvp21", tcp=("127.0.0.1", 0), password="admin") as sim:
        client = await TcpClient.connect(sim.port)
        await client.send(HELLO)
        assert (await client.read_exactly(16))[14] == 0x41
        await client.send(hello_with_password(b"admin"))
        assert await client.read_exactly(16) == OK
        assert await ask(client, b"PWR?\r") == b"PWR=04\r:"
        await client.close()

        client = await TcpClient.connect(sim.port)
        await client.send(hello_with_password(b"wrong"))
        assert (await client.read_exactly(16))[14] == 0x43
        assert await client.closed_by_peer()
        await client.close()

        client = await TcpClient.connect(sim.port)
        await client.send(b"ESC/VP.net\x20\x03\x00\x00\x00\x00")
        assert (await client.read_exactly(16))[14] == 0x55
        await client.close()

        client = await TcpClient.connect(sim.port)
        await client.send(b"PWR?\r")  # no handshake: the projector drops the connection
        assert await client.closed_by_peer()
        await client.close()


async def test_handshake_one_byte_at_a_time_and_commands_in_one_chunk() -> None:
    async with start_simulator("epson-escvp21", tcp=("127.0.0.1", 0)) as sim:
        sim.sim.power.force(Power.ON)
        client = await TcpClient.connect(sim.port)
        await client.send_slowly(HELLO + b"PWR?\r")
        assert await client.read_exactly(16) == OK
        assert await client.read_until(b":") == b"PWR=01\r:"
        await client.send(b"MUTE ON\rMUTE?\rFREEZE?\r")
        assert await client.read_until(b":") == b":"
        assert await client.read_until(b":") == b"MUTE=ON\r:"
        assert await client.read_until(b":") == b"FREEZE=OFF\r:"
        await client.close()


async def test_serial_needs_no_handshake() -> None:
    async with start_simulator("epson-escvp21", pty=True, baud=9600) as sim:
        port = PtyClient(sim.path, baud=9600)
        try:
            assert await ask(port, b"PWR?\r") == b"PWR=04\r:"
            assert await ask(port, b"BOGUS\r") == b"ERR\r:"
        finally:
            port.close()
