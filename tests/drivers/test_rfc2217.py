"""RFC 2217 serial servers: our thread-backed transport against pyserial's own port manager.

The "device" is the master side of a real pty; a small RFC 2217 server (pyserial's
`PortManager`, as in its `rfc2217_server.py` example) bridges a TCP client to the pty's slave.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import tty
from collections.abc import Iterator
from typing import Any, cast

import pytest
import serial
import serial.rfc2217

from tribune.drivers.transport import LineSettings, ThreadedSerialTransport, open_transport


class _Connection:
    """What PortManager writes its telnet replies through."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)


class _PtySerial(serial.Serial):
    """A pty has no modem lines; PortManager asks for them, so answer as a 3-wire cable would."""

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass


def _bridge(listener: socket.socket, slave_path: str, stop: threading.Event) -> None:
    conn, _ = listener.accept()
    conn.settimeout(0.05)
    port = _PtySerial(slave_path, timeout=0.05)
    # The stubs type both arguments as rfc2217.Serial; PortManager only needs these methods.
    manager = serial.rfc2217.PortManager(cast(Any, port), cast(Any, _Connection(conn)))

    def serial_to_network() -> None:
        while not stop.is_set():
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError):
                return
            if data:
                conn.sendall(b"".join(manager.escape(data)))

    reader = threading.Thread(target=serial_to_network, daemon=True)
    reader.start()
    while not stop.is_set():
        try:
            data = conn.recv(1024)
        except TimeoutError:
            continue
        except OSError:
            break
        if not data:
            break
        port.write(b"".join(manager.filter(data)))
    stop.set()
    reader.join(1)
    port.close()
    conn.close()


@pytest.fixture
def rfc2217_server() -> Iterator[tuple[int, int]]:
    """(TCP port of the RFC 2217 server, pty master fd acting as the device)."""
    master, slave = os.openpty()
    tty.setraw(master)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()
    thread = threading.Thread(target=_bridge, args=(listener, os.ttyname(slave), stop), daemon=True)
    thread.start()
    yield listener.getsockname()[1], master
    stop.set()
    listener.close()
    thread.join(3)
    os.close(master)
    os.close(slave)


async def test_rfc2217_both_ways(rfc2217_server: tuple[int, int]) -> None:
    tcp_port, master = rfc2217_server
    transport = open_transport(f"rfc2217://127.0.0.1:{tcp_port}", LineSettings(baudrate=19200))
    assert isinstance(transport, ThreadedSerialTransport)
    await asyncio.wait_for(transport.open(), 10)
    loop = asyncio.get_running_loop()
    try:
        transport.write(b"get powerstate\r")
        received = b""
        while not received.endswith(b"\r"):
            received += await asyncio.wait_for(loop.run_in_executor(None, os.read, master, 64), 5)
        assert received == b"get powerstate\r"
        os.write(master, b"powerstate=on\r>")
        reply = b""
        while not reply.endswith(b">"):
            reply += await asyncio.wait_for(transport.read(), 5)
        assert reply == b"powerstate=on\r>"
    finally:
        await transport.close()
