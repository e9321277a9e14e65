"""Transports over real ptys and real sockets."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tribune.drivers.transport import (
    LineSettings,
    SerialTransport,
    TcpTransport,
    ThreadedSerialTransport,
    open_transport,
)
from tribune.errors import ConfigError, LinkClosedError, LinkError


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A real pty: the master fd (the "device" side) and the slave path (the port we open)."""
    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    yield master, path
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


async def _read_master(master: int, count: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < count:
        data += await loop.run_in_executor(None, os.read, master, 4096)
    return data


def test_open_transport_picks_by_url() -> None:
    assert isinstance(open_transport("tcp://127.0.0.1:4352"), TcpTransport)
    assert isinstance(open_transport("/dev/ttyUSB0"), SerialTransport)
    assert isinstance(open_transport("/dev/serial/by-id/usb-FTDI-if00-port0"), SerialTransport)
    assert isinstance(open_transport("socket://127.0.0.1:7000"), SerialTransport)
    assert isinstance(open_transport("rfc2217://127.0.0.1:7000"), ThreadedSerialTransport)
    with pytest.raises(ConfigError, match="unsupported port"):
        open_transport("http://example.invalid/")
    with pytest.raises(ConfigError, match="tcp://host:port"):
        open_transport("tcp://nohost")


async def test_serial_over_pty_both_ways(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    transport = open_transport(path, LineSettings(baudrate=19200))
    await transport.open()
    try:
        transport.write(b"PWR?\r")
        assert await _read_master(master, 5) == b"PWR?\r"
        os.write(master, b"PWR=01\r:")
        received = b""
        while len(received) < 8:
            received += await asyncio.wait_for(transport.read(), 2)
        assert received == b"PWR=01\r:"
    finally:
        await transport.close()


async def test_serial_via_stable_symlink(pty_pair: tuple[int, str], tmp_path: Path) -> None:
    """A /dev/serial/by-id style symlink is just a path to the current tty."""
    master, path = pty_pair
    link = tmp_path / "usb-Prolific_USB-Serial-if00-port0"
    link.symlink_to(path)
    transport = open_transport(str(link))
    await transport.open()
    try:
        transport.write(b"x")
        assert await _read_master(master, 1) == b"x"
    finally:
        await transport.close()


async def test_pty_vanishing_is_reported(pty_pair: tuple[int, str]) -> None:
    """Closing the master is what unplugging a USB-serial adapter looks like to the reader."""
    master, path = pty_pair
    transport = open_transport(path)
    await transport.open()
    os.close(master)

    async def drain() -> None:
        while True:
            await asyncio.wait_for(transport.read(), 2)

    with pytest.raises(LinkClosedError):
        await drain()
    await transport.close()


async def test_missing_serial_port_is_a_link_error(tmp_path: Path) -> None:
    transport = open_transport(str(tmp_path / "ttyUSB9"))
    with pytest.raises(LinkError):
        await transport.open()


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[asyncio.Server, int]]:
    """A TCP peer that answers every chunk with `ok:<chunk>`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(100):
            writer.write(b"ok:" + data)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield server, port
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("scheme", ["tcp", "socket"])
async def test_tcp_and_serial_over_socket(
    echo_server: tuple[asyncio.Server, int], scheme: str
) -> None:
    _, port = echo_server
    transport = open_transport(f"{scheme}://127.0.0.1:{port}")
    await transport.open()
    try:
        transport.write(b"hello")
        received = b""
        while len(received) < 8:
            received += await asyncio.wait_for(transport.read(), 2)
        assert received == b"ok:hello"
    finally:
        await transport.close()
    with pytest.raises(LinkClosedError):
        transport.write(b"late")


async def test_tcp_refused_is_a_link_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    transport = open_transport(f"tcp://127.0.0.1:{port}")
    with pytest.raises(LinkError):
        await transport.open()


async def test_tcp_peer_hangup_mid_reply_is_reported() -> None:
    """The device sends half a reply and closes the connection (a projector rebooting)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"%1POW")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = open_transport(f"tcp://127.0.0.1:{port}")
    await transport.open()
    try:
        transport.write(b"%1POWR ?\r")
        assert await asyncio.wait_for(transport.read(), 2) == b"%1POW"
        with pytest.raises(LinkClosedError):
            await asyncio.wait_for(transport.read(), 2)
        assert not transport.is_open
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()
