"""Raw clients for the simulator tests: a real TCP socket and a real pty opened by path.

And the PJLink exchange the PJLink and fault tests share.
"""

from __future__ import annotations

import asyncio
import os
import termios
import tty

from tribune.sim import RunningSimulator

TIMEOUT = 2.0


class TcpClient:
    """A raw TCP client reading exact byte counts or up to a terminator."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> TcpClient:
        """Open a connection."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        """Write bytes."""
        self.writer.write(data)
        await self.writer.drain()

    async def send_slowly(self, data: bytes) -> None:
        """Write one byte at a time, yielding between bytes."""
        for byte in data:
            self.writer.write(bytes([byte]))
            await self.writer.drain()
            await asyncio.sleep(0.002)

    async def read_until(self, terminator: bytes, timeout: float = TIMEOUT) -> bytes:
        """Read up to and including `terminator`."""
        return await asyncio.wait_for(self.reader.readuntil(terminator), timeout)

    async def read_exactly(self, count: int, timeout: float = TIMEOUT) -> bytes:
        """Read exactly `count` bytes."""
        return await asyncio.wait_for(self.reader.readexactly(count), timeout)

    async def read_nothing(self, wait: float = 0.3) -> bytes:
        """What arrives within `wait` seconds (expected: nothing)."""
        try:
            return await asyncio.wait_for(self.reader.read(100), wait)
        except TimeoutError:
            return b""

    async def closed_by_peer(self, timeout: float = TIMEOUT) -> bool:
        """True when the server closes the connection (EOF) within `timeout`."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), timeout)
        except (TimeoutError, ConnectionError):
            return False
        return rest == b"" or self.reader.at_eof()

    async def close(self) -> None:
        """Close our end."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


class PtyClient:
    """A raw serial client on a pty path: os.open + termios, reads through the event loop."""

    def __init__(self, path: str, baud: int | None = None) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        if baud is not None:
            self.set_baud(baud)
        self._buffer = b""

    def set_baud(self, baud: int) -> None:
        """Set the line speed, 8N1."""
        attrs = termios.tcgetattr(self.fd)
        speed = getattr(termios, f"B{baud}")
        attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB | termios.CSTOPB)) | termios.CS8
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    async def send(self, data: bytes) -> None:
        """Write bytes."""
        os.write(self.fd, data)
        await asyncio.sleep(0)

    async def send_slowly(self, data: bytes) -> None:
        """Write one byte at a time."""
        for byte in data:
            os.write(self.fd, bytes([byte]))
            await asyncio.sleep(0.002)

    async def _fill(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self.fd, on_readable)
        try:
            await asyncio.wait_for(ready, timeout)
        finally:
            loop.remove_reader(self.fd)
        self._buffer += os.read(self.fd, 4096)

    async def read_until(self, terminator: bytes, timeout: float = TIMEOUT) -> bytes:
        """Read up to and including `terminator`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while terminator not in self._buffer:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no {terminator!r} in {self._buffer!r}")
            await self._fill(remaining)
        end = self._buffer.index(terminator) + len(terminator)
        data, self._buffer = self._buffer[:end], self._buffer[end:]
        return data

    async def read_exactly(self, count: int, timeout: float = TIMEOUT) -> bytes:
        """Read exactly `count` bytes."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self._buffer) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"only {self._buffer!r}")
            await self._fill(remaining)
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    async def read_nothing(self, wait: float = 0.3) -> bytes:
        """What arrives within `wait` seconds (expected: nothing)."""
        try:
            await self._fill(wait)
        except TimeoutError:
            pass
        data, self._buffer = self._buffer, b""
        return data

    def close(self) -> None:
        """Close the port."""
        os.close(self.fd)


async def pjlink_connect(sim: RunningSimulator) -> TcpClient:
    """A TCP client past the greeting of a PJLink projector without password."""
    client = await TcpClient.connect(sim.port)
    assert await client.read_until(b"\r") == b"PJLINK 0\r"
    return client


async def pjlink_ask(client: TcpClient, request: bytes) -> bytes:
    """Send a PJLink command; its answer, up to and including the `\\r`."""
    await client.send(request)
    return await client.read_until(b"\r")
