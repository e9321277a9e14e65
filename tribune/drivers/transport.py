"""Transports move bytes to and from a device and know nothing about devices.

`open_transport(url, serial_settings)` picks the implementation from the port URL:
`tcp://host:port` is a plain socket; a device path (`/dev/ttyUSB0`, `/dev/serial/by-id/...`),
`socket://host:port` and `rfc2217://host:port` go through pyserial; `usb://VID:PID?...` is USB
control transfers through pyusb (`usb_transport.py`). Every transport reads into a
queue of chunks; `read()` raises `LinkClosedError` once the peer or the port is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import termios
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import serial
import serial_asyncio_fast

from tribune.errors import ConfigError, LinkClosedError, LinkError

log = logging.getLogger(__name__)

_EOF = b""


class ConnectionState(StrEnum):
    """The state of a device link; the one enum every layer reports."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LineSettings:
    """Serial line settings (from the profile, overridden per device)."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False

    def describe(self) -> str:
        """Short form, e.g. `9600 8N1`."""
        stop = int(self.stopbits) if self.stopbits in (1, 2) else self.stopbits
        return f"{self.baudrate} {self.bytesize}{self.parity}{stop}"


class _QueueProtocol(asyncio.Protocol):
    """Feeds received chunks into a queue; EOF and errors become an empty chunk."""

    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self.queue = queue
        self.transport: asyncio.BaseTransport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    def eof_received(self) -> bool | None:
        self.queue.put_nowait(_EOF)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        self.queue.put_nowait(_EOF)


class Transport(ABC):
    """A byte pipe to one device."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._closed = True

    @property
    def is_open(self) -> bool:
        """Whether bytes can be written now."""
        return not self._closed

    @abstractmethod
    async def open(self) -> None:
        """Open the link; raises `LinkError` when the device or port is not there."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Queue bytes for sending; raises `LinkClosedError` if the link is gone."""

    @abstractmethod
    async def close(self) -> None:
        """Close the link; safe to call twice."""

    async def read(self) -> bytes:
        """The next chunk of received bytes; raises `LinkClosedError` when the link is gone."""
        if self._closed and self._queue.empty():
            raise LinkClosedError(f"{self.url}: link is closed")
        chunk = await self._queue.get()
        if chunk == _EOF:
            self._closed = True
            raise LinkClosedError(f"{self.url}: closed by the device or the port vanished")
        return chunk

    def _reset_queue(self) -> None:
        self._queue = asyncio.Queue()


class _AsyncioTransport(Transport):
    """Shared write/close for transports built on an asyncio transport."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._transport: asyncio.Transport | None = None
        self._protocol: _QueueProtocol | None = None

    def write(self, data: bytes) -> None:
        transport = self._transport
        if self._closed or transport is None or transport.is_closing():
            raise LinkClosedError(f"{self.url}: link is closed")
        transport.write(data)

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        self._closed = True
        if transport is None:
            return
        transport.close()
        # Let the transport finish closing (serial close runs in an executor).
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)


class TcpTransport(_AsyncioTransport):
    """A plain TCP connection: `tcp://host:port`."""

    def __init__(self, url: str, *, connect_timeout: float = 3.0) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise ConfigError(f"bad TCP port URL {url!r}: want tcp://host:port")
        self.host, self.port = parts.hostname, parts.port
        self.connect_timeout = connect_timeout

    async def open(self) -> None:
        self._reset_queue()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                transport, protocol = await loop.create_connection(
                    lambda: _QueueProtocol(self._queue), self.host, self.port
                )
        except TimeoutError as exc:
            raise LinkError(f"{self.url}: no answer to connect") from exc
        except ConnectionRefusedError as exc:
            raise LinkError(f"{self.url}: connection refused (is the device on?)") from exc
        except OSError as exc:
            raise LinkError(f"{self.url}: {exc.strerror or exc}") from exc
        assert isinstance(transport, asyncio.Transport)
        self._transport, self._protocol = transport, protocol
        self._closed = False


class SerialTransport(_AsyncioTransport):
    """A serial port through pyserial: device paths, `socket://` and `rfc2217://` URLs."""

    def __init__(self, url: str, settings: LineSettings) -> None:
        super().__init__(url)
        self.settings = settings

    def _serial_kwargs(self) -> dict[str, Any]:
        s = self.settings
        return {
            "baudrate": s.baudrate,
            "bytesize": s.bytesize,
            "parity": s.parity,
            "stopbits": s.stopbits,
            "rtscts": s.rtscts,
            "xonxoff": s.xonxoff,
        }

    async def open(self) -> None:
        self._reset_queue()
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await serial_asyncio_fast.create_serial_connection(
                loop, lambda: _QueueProtocol(self._queue), self.url, **self._serial_kwargs()
            )
        except ConnectionRefusedError as exc:
            raise LinkError(f"{self.url}: connection refused (is the device on?)") from exc
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            raise LinkError(f"{self.url}: {exc}") from exc
        assert isinstance(protocol, _QueueProtocol)
        self._transport, self._protocol = transport, protocol
        self._closed = False


class ThreadedSerialTransport(Transport):
    """pyserial ports with no file descriptor to watch (`rfc2217://`): a reader thread per link."""

    def __init__(self, url: str, settings: LineSettings) -> None:
        super().__init__(url)
        self.settings = settings
        self._serial: serial.SerialBase | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer_pool: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        self._reset_queue()
        loop = asyncio.get_running_loop()
        s = self.settings
        # One worker keeps writes in order; reads have their own so a write never waits on one.
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rfc2217-write")
        self._reader_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rfc2217-read")

        def _open() -> serial.SerialBase:
            return serial.serial_for_url(
                self.url,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                rtscts=s.rtscts,
                xonxoff=s.xonxoff,
                timeout=0.05,
            )

        try:
            self._serial = await loop.run_in_executor(self._writer_pool, _open)
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            self._shutdown_pools()
            raise LinkError(f"{self.url}: {exc}") from exc
        self._closed = False
        self._reader = asyncio.create_task(self._read_loop(self._serial))

    async def _read_loop(self, port: serial.SerialBase) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._closed:
                data = await loop.run_in_executor(self._reader_pool, port.read, 4096)
                if data:
                    self._queue.put_nowait(bytes(data))
        except (serial.SerialException, OSError) as exc:
            log.info("%s: read failed: %s", self.url, exc)
        self._queue.put_nowait(_EOF)

    def write(self, data: bytes) -> None:
        port = self._serial
        if self._closed or port is None:
            raise LinkClosedError(f"{self.url}: link is closed")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._writer_pool, port.write, data)
        future.add_done_callback(self._write_done)

    def _write_done(self, future: asyncio.Future[int | None]) -> None:
        if future.cancelled() or future.exception() is None:
            return
        log.info("%s: write failed: %s", self.url, future.exception())
        self._queue.put_nowait(_EOF)

    async def close(self) -> None:
        self._closed = True
        port, self._serial = self._serial, None
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if port is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer_pool, port.close)
        self._shutdown_pools()

    def _shutdown_pools(self) -> None:
        for pool in (self._writer_pool, self._reader_pool):
            if pool is not None:
                pool.shutdown(wait=False)
        self._writer_pool = self._reader_pool = None


def open_transport(url: str, settings: LineSettings | None = None) -> Transport:
    """The transport for a port URL (not yet opened)."""
    settings = settings or LineSettings()
    scheme = urlsplit(url).scheme
    if scheme == "tcp":
        return TcpTransport(url)
    if scheme == "rfc2217":
        return ThreadedSerialTransport(url, settings)
    if scheme == "usb":
        from tribune.drivers.usb_transport import UsbTransport  # pyusb only when asked for

        return UsbTransport(url)
    if scheme in ("socket", "") or url.startswith("/"):
        return SerialTransport(url, settings)
    raise ConfigError(
        f"unsupported port {url!r}: use a device path, tcp://, socket://, rfc2217:// or usb://"
    )


def quiet_serial_faults(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: pyserial-asyncio reports a read or write that failed on a
    vanished adapter (EIO, ENXIO when it is pulled out mid-write) as a fatal error with a
    traceback; the link already takes it as the port lost and reconnects, so it is logged as
    one plain warning. Anything else goes to asyncio's default handler."""
    exc = context.get("exception")
    message = str(context.get("message", ""))
    if message.endswith("error on serial transport") and isinstance(
        exc, OSError | serial.SerialException
    ):
        port = getattr(getattr(context.get("transport"), "serial", None), "port", None) or "?"
        log.warning("%s: %s (unplugged?); reconnecting", port, exc)
        return
    loop.default_exception_handler(context)
