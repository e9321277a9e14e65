"""Session handshakes run right after a link opens, before normal framing starts.

PJLink sends a greeting and may demand an MD5 digest before the first command; Epson's TCP
control (ESC/VP.net) wants a 16-byte CONNECT exchange; some serial devices want a bare CR to wake
their command parser. A session reads raw bytes through `RawReader` and may prefix the first
payload of the connection.
"""

from __future__ import annotations

import asyncio

from tribune.drivers.codecs.pjlink import pjlink_digest
from tribune.drivers.transport import Transport
from tribune.errors import AuthenticationError, DeviceBusyError, LinkError, ProtocolError


class RawReader:
    """Reads raw bytes from a transport during a handshake; keeps what it read too far."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.buffer = bytearray()

    async def _fill(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):
            self.buffer += await self.transport.read()

    async def read_until(self, separator: bytes, timeout: float, limit: int = 512) -> bytes:
        """Bytes up to and including `separator`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (end := self.buffer.find(separator)) < 0:
            if len(self.buffer) > limit:
                raise ProtocolError(f"no {separator!r} in the first {limit} bytes of the greeting")
            await self._fill(deadline)
        line = bytes(self.buffer[: end + len(separator)])
        del self.buffer[: end + len(separator)]
        return line

    async def discard_for(self, seconds: float) -> None:
        """Read and drop whatever arrives during `seconds`."""
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            while True:
                await self._fill(deadline)
        except TimeoutError:
            pass
        self.buffer.clear()

    async def read_exactly(self, count: int, timeout: float) -> bytes:
        """Exactly `count` bytes."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.buffer) < count:
            await self._fill(deadline)
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data


class Session:
    """No handshake: the device takes commands as soon as the link is open."""

    async def start(self, transport: Transport, reader: RawReader, timeout: float) -> None:
        """Run the handshake; raises `AuthenticationError`, `ProtocolError` or `TimeoutError`."""

    def prepare(self, payload: bytes) -> bytes:
        """The payload to encode for the next request (a first-command prefix, for example)."""
        return payload


class WakeupSession(Session):
    """Writes a wake-up sequence (Epson serial wants a CR before it shows its `:` prompt)."""

    def __init__(self, wakeup: bytes, *, settle: float = 0.1) -> None:
        self.wakeup = wakeup
        self.settle = settle

    async def start(self, transport: Transport, reader: RawReader, timeout: float) -> None:
        transport.write(self.wakeup)
        # Whatever the device prints in answer (a prompt) is not a reply to anything.
        await reader.discard_for(self.settle)


class PjlinkSession(Session):
    """PJLink greeting: `PJLINK 0` (no security) or `PJLINK 1 <random>` (digest required)."""

    def __init__(self, password: str | None) -> None:
        self.password = password
        self._prefix = b""

    async def start(self, transport: Transport, reader: RawReader, timeout: float) -> None:
        self._prefix = b""
        line = (await reader.read_until(b"\r", timeout)).strip().decode("latin-1")
        parts = line.split(" ")
        if line == "PJLINK ERRA":
            raise AuthenticationError("PJLink authentication failed", code="ERRA")
        if len(parts) < 2 or parts[0] != "PJLINK" or parts[1] not in ("0", "1"):
            raise ProtocolError(f"not a PJLink greeting: {line[:40]!r}")
        if parts[1] == "0":
            return
        if len(parts) != 3:
            raise ProtocolError(f"PJLink greeting without a random number: {line[:40]!r}")
        if not self.password:
            raise AuthenticationError(
                "PJLink authentication failed: the projector requires a password and none is set",
                code="ERRA",
            )
        self._prefix = pjlink_digest(parts[2], self.password).encode("ascii")

    def prepare(self, payload: bytes) -> bytes:
        prefix, self._prefix = self._prefix, b""
        return prefix + payload


ESCVPNET_MAGIC = b"ESC/VP.net"
ESCVPNET_VERSION = 0x10
ESCVPNET_CONNECT = 0x03
ESCVPNET_OK = 0x20
ESCVPNET_STATUS = {
    0x40: "bad request",
    0x41: "unauthorized: password required or wrong",
    0x43: "forbidden",
    0x45: "request not allowed",
    0x53: "service unavailable: another client is connected",
    0x55: "protocol version not supported",
}


class EscVpNetSession(Session):
    """Epson ESC/VP.net CONNECT handshake on TCP port 3629, with an optional password header."""

    def __init__(self, password: str | None) -> None:
        self.password = password

    def connect_request(self) -> bytes:
        """The 16-byte CONNECT header, plus an 18-byte password header when a password is set."""
        headers = b""
        if self.password:
            secret = self.password.encode("latin-1")[:16].ljust(16, b"\x00")
            headers = bytes([0x01, 0x01]) + secret
        count = 1 if headers else 0
        return (
            ESCVPNET_MAGIC + bytes([ESCVPNET_VERSION, ESCVPNET_CONNECT, 0, 0, 0, count]) + headers
        )

    async def start(self, transport: Transport, reader: RawReader, timeout: float) -> None:
        transport.write(self.connect_request())
        reply = await reader.read_exactly(16, timeout)
        if not reply.startswith(ESCVPNET_MAGIC):
            raise ProtocolError(f"not an ESC/VP.net reply: {reply!r}")
        status = reply[14]
        if reply[15]:  # the projector may send headers back; they carry nothing we need
            await reader.read_exactly(18 * reply[15], timeout)
        if status == ESCVPNET_OK:
            return
        reason = ESCVPNET_STATUS.get(status, f"status 0x{status:02X}")
        if status == 0x41:
            raise AuthenticationError(f"ESC/VP.net: {reason}", code=f"{status:02X}")
        if status == 0x53:
            raise DeviceBusyError(f"ESC/VP.net: {reason}", code=f"{status:02X}")
        raise LinkError(f"ESC/VP.net connect refused: {reason}")
