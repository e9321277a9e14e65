"""Endpoints: TCP restart on the same port, pty unplug/replug through a symlink, line checks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import serial

from tests.sim.sim_clients import PtyClient, TcpClient
from tribune.sim import SIMULATORS, start_simulator


async def test_tcp_restart_on_same_port() -> None:
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0)) as sim:
        port = sim.port
        client = await TcpClient.connect(port)
        assert await client.read_until(b"\r") == b"PJLINK 0\r"
        await sim.stop_tcp()
        assert await client.closed_by_peer()
        await client.close()
        with pytest.raises(OSError):
            await TcpClient.connect(port)
        await sim.start_tcp()
        assert sim.port == port
        client = await TcpClient.connect(port)
        assert await client.read_until(b"\r") == b"PJLINK 0\r"
        await client.close()
        await sim.restart_tcp()
        client = await TcpClient.connect(port)
        assert await client.read_until(b"\r") == b"PJLINK 0\r"
        await client.close()


async def test_unplug_and_replug_through_symlink(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB-projector"
    async with start_simulator("epson-escvp21", link=str(link)) as sim:
        first = sim.path
        assert os.readlink(link) == first
        port = PtyClient(str(link))
        await port.send(b"PWR?\r")
        assert await port.read_until(b":") == b"PWR=04\r:"
        sim.unplug()
        assert not link.exists()
        assert os.read(port.fd, 100) == b""  # hung up: end of file ...
        with pytest.raises(OSError):
            os.write(port.fd, b"PWR?\r")  # ... and EIO on write
        port.close()
        second = sim.replug()
        assert os.readlink(link) == second
        port = PtyClient(str(link))
        await port.send(b"PWR?\r")
        assert await port.read_until(b":") == b"PWR=04\r:"
        port.close()


async def test_client_close_does_not_break_the_pty() -> None:
    async with start_simulator("extron-sis", pty=True) as sim:
        for _ in range(2):
            port = PtyClient(sim.path)
            await port.send(b"Q")
            assert await port.read_until(b"\r\n") == b"1.05\r\n"
            port.close()


async def test_pyserial_client_with_line_check() -> None:
    async with start_simulator("smart-board", pty=True, baud=19200) as sim:
        wrong = serial.Serial(sim.path, baudrate=9600, timeout=0.3)
        wrong.write(b"get powerstate\r")
        assert await asyncio.to_thread(wrong.read, 50) == b""
        wrong.baudrate = 19200
        wrong.write(b"get powerstate\r")
        assert await asyncio.to_thread(wrong.read_until, b">") == b"powerstate=ready\r\n>"
        wrong.close()


def test_registry_ids_and_defaults() -> None:
    assert set(SIMULATORS) == {
        "pjlink",
        "epson-escvp21",
        "nec-projector",
        "extron-sis",
        "kramer-p3000",
        "smart-board",
        "samsung-mdc",
        "sony-projector",
        "panasonic-projector",
        "lg-display",
        "cisco-roomos",
    }
    assert SIMULATORS["pjlink"].tcp_port == 4352
    assert SIMULATORS["nec-projector"].serial.baud == 38400
    assert str(SIMULATORS["smart-board"].serial) == "19200 8N1"
    assert str(SIMULATORS["sony-projector"].serial) == "38400 8E1"


async def test_start_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown simulator"):
        await start_simulator("nope", pty=True).__aenter__()
    with pytest.raises(ValueError, match="does not take a password"):
        await start_simulator("nec-projector", pty=True, password="x").__aenter__()
