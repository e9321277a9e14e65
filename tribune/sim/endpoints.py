"""Where a simulator meets its clients: a TCP server and an unpluggable pseudo-terminal."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import termios
import tty
from typing import Any

from tribune.sim.base import LineSettings, Session, Simulator, log

_SIZE_FLAGS = {5: termios.CS5, 6: termios.CS6, 7: termios.CS7, 8: termios.CS8}


class TcpEndpoint:
    """Serves a simulator on host:port; stoppable and restartable on the same port."""

    def __init__(self, sim: Simulator[Any], host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._links: set[_TcpLink] = set()

    @property
    def running(self) -> bool:
        """True while the port is listening."""
        return self._server is not None

    async def start(self) -> None:
        """Listen; with port 0 the bound port is kept, so a restart reuses it."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TcpLink(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s listening on %s:%d", self.sim.id, self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and drop every client, as a device that is switched off."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for link in list(self._links):
            link.abort()
        await server.wait_closed()
        log.info("%s stopped listening on %s:%d", self.sim.id, self.host, self.port)

    async def restart(self) -> None:
        """Stop, then listen again on the same port."""
        await self.stop()
        await self.start()


class _TcpLink(asyncio.Protocol):
    """One TCP client; adapts asyncio's transport to a simulator `Link`."""

    def __init__(self, endpoint: TcpEndpoint) -> None:
        self.endpoint = endpoint
        self.name = "tcp"
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.name = f"tcp {peer[0]}:{peer[1]}" if peer else "tcp"
        self.endpoint._links.add(self)
        sim = self.endpoint.sim
        self._session = sim.open_session(self, network=True)
        sim.sessions.add(self._session)
        log.debug("%s client connected (%s)", sim.id, self.name)
        self._session.connection_made()

    def data_received(self, data: bytes) -> None:
        if self._session is not None:
            self._session.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint._links.discard(self)
        log.debug("%s client gone (%s)", self.endpoint.sim.id, self.name)
        if self._session is not None:
            self._session.connection_lost()

    def write(self, data: bytes) -> None:
        """Send to the client."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        """Hang up after flushing what was written."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Hang up at once."""
        if self._transport is not None:
            self._transport.abort()


class PtyEndpoint:
    """Serves a simulator on a pseudo-terminal that can be unplugged and replugged.

    The simulator keeps the slave side open too, so the master never reads EIO when the
    client closes the port. `link` names a symlink kept pointing at the current slave, as
    /dev/serial/by-id does for a USB adapter. With `line` set, bytes that arrive while the
    client's termios settings differ from it are ignored, as a real device hears only noise.
    """

    def __init__(
        self,
        sim: Simulator[Any],
        *,
        link: str | None = None,
        line: LineSettings | None = None,
        auto_replug: float | None = None,
    ) -> None:
        self.sim = sim
        self.link = link
        self.line = line
        self.auto_replug = auto_replug
        self.path: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._session: Session | None = None
        self._outgoing = b""
        self._replug_handle: asyncio.TimerHandle | None = None
        self._expected = line

    @property
    def plugged(self) -> bool:
        """True while the pty exists."""
        return self._master is not None

    def plug(self) -> str:
        """Create the pty (and repoint the symlink); returns the slave path."""
        if self._master is not None and self.path is not None:
            return self.path
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave)
        if self.line is None:
            _set_line(slave, self.sim.serial)
        elif self.line.parity != "N" and not _parity_supported(slave):
            # Some kernels refuse parity on a pty: check the rest of the settings only.
            self._expected = dataclasses.replace(self.line, parity="N")
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        if self.link is not None:
            _point_symlink(self.link, self.path)
        loop.add_reader(master, self._on_readable)
        self._session = self.sim.open_session(self, network=False)
        self.sim.sessions.add(self._session)
        log.info("%s plugged in at %s", self.sim.id, self.link or self.path)
        self._session.connection_made()
        return self.path

    def unplug(self) -> None:
        """Remove the pty: the client's port errors out and the symlink disappears."""
        if self._replug_handle is not None:
            self._replug_handle.cancel()
            self._replug_handle = None
        master, slave = self._master, self._slave
        if master is None or slave is None:
            return
        self._master = self._slave = None
        loop = asyncio.get_running_loop()
        loop.remove_reader(master)
        loop.remove_writer(master)
        self._outgoing = b""
        os.close(master)
        os.close(slave)
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)
        if self._session is not None:
            self._session.connection_lost()
            self._session = None
        log.info("%s unplugged from %s", self.sim.id, self.path)

    def replug(self) -> str:
        """Unplug, then plug a new pty (a new path; the symlink follows)."""
        self.unplug()
        return self.plug()

    # Link protocol, used by the session.

    @property
    def name(self) -> str:
        """The pty path, for logs."""
        return f"pty {self.path}"

    def write(self, data: bytes) -> None:
        """Send to the client, buffering what the pty cannot take yet."""
        if self._master is None:
            return
        self._outgoing += data
        self._flush()

    def close(self) -> None:
        """A hang-up on a serial line is the adapter going away."""
        self.unplug()
        if self.auto_replug is not None:
            loop = asyncio.get_running_loop()
            self._replug_handle = loop.call_later(self.auto_replug, self.plug)

    def _flush(self) -> None:
        master = self._master
        if master is None:
            return
        loop = asyncio.get_running_loop()
        try:
            written = os.write(master, self._outgoing)
        except BlockingIOError:
            written = 0
        self._outgoing = self._outgoing[written:]
        if self._outgoing:
            loop.add_writer(master, self._flush)
        else:
            loop.remove_writer(master)

    def _on_readable(self) -> None:
        master, session = self._master, self._session
        if master is None or session is None:
            return
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            return
        except OSError:
            return
        if not data:
            return
        if self._expected is not None and self._slave is not None:
            actual = _read_line(self._slave)
            if actual != self._expected:
                log.debug(
                    "%s line is %s, expects %s: ignoring %r", self.sim.id, actual, self.line, data
                )
                return
        session.data_received(data)


def _point_symlink(link: str, target: str) -> None:
    """Atomically point `link` at `target`."""
    temporary = f"{link}.tmp{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)


def _set_line(fd: int, line: LineSettings) -> None:
    """Apply `line` to a tty (so a client that sets nothing matches the device)."""
    attrs = termios.tcgetattr(fd)
    speed = getattr(termios, f"B{line.baud}")
    cflag = attrs[2] & ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB)
    cflag |= _SIZE_FLAGS[line.bytesize]
    if line.parity in ("E", "O"):
        cflag |= termios.PARENB | (termios.PARODD if line.parity == "O" else 0)
    if line.stopbits == 2:
        cflag |= termios.CSTOPB
    attrs[2] = cflag
    attrs[4] = attrs[5] = speed
    try:
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error:
        # Some kernels refuse parity on a pty (EINVAL); a pty carries no parity bit anyway.
        attrs[2] &= ~(termios.PARENB | termios.PARODD)
        termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _parity_supported(fd: int) -> bool:
    """True when the tty accepts parity settings (not every kernel's pty does)."""
    attrs = termios.tcgetattr(fd)
    trial = list(attrs)
    trial[2] = attrs[2] | termios.PARENB
    try:
        termios.tcsetattr(fd, termios.TCSANOW, trial)
    except termios.error:
        return False
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return True


def _read_line(fd: int) -> LineSettings | None:
    """The line settings the client put on the tty, or None when the speed is non-standard."""
    attrs = termios.tcgetattr(fd)
    cflag, speed = attrs[2], attrs[5]
    baud = _BAUDS.get(speed)
    if baud is None:
        return None
    bytesize = next(size for size, flag in _SIZE_FLAGS.items() if cflag & termios.CSIZE == flag)
    parity = "N"
    if cflag & termios.PARENB:
        parity = "O" if cflag & termios.PARODD else "E"
    stopbits = 2 if cflag & termios.CSTOPB else 1
    return LineSettings(baud, bytesize, parity, stopbits)


_BAUDS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)
}
