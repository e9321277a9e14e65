"""A device link: one connection, its codec and session, and one request in flight at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from tribune.drivers.codecs.base import Codec, Deframer, Frame, FrameKind
from tribune.drivers.sessions import RawReader, Session
from tribune.drivers.transport import ConnectionState, LineSettings, Transport, open_transport
from tribune.errors import (
    AuthenticationError,
    DeviceTimeoutError,
    FrameError,
    LinkClosedError,
    LinkError,
)

log = logging.getLogger(__name__)

FrameFilter = Callable[[Frame], bool]
TransportFactory = Callable[[str, LineSettings], Transport]


PARTIAL_QUIET = 0.2  # s of silence after which unfinished bytes are taken for noise


class DeviceLink:
    """Opens the transport, runs the session handshake, frames bytes and matches replies."""

    def __init__(
        self,
        url: str,
        *,
        codec: Codec,
        settings: LineSettings | None = None,
        session: Session | None = None,
        on_unsolicited: Callable[[Frame], None] | None = None,
        on_lost: Callable[[Exception], None] | None = None,
        handshake_timeout: float = 3.0,
        name: str = "",
        transport_factory: TransportFactory | None = None,
    ) -> None:
        """`transport_factory` builds the transport for the URL (default: `open_transport`;
        tests hand a USB transport a fake pyusb backend through it)."""
        self.url = url
        self.transport_factory = transport_factory or open_transport
        self.name = name or url
        self.codec = codec
        self.settings = settings or LineSettings()
        self.session = session or Session()
        self.on_unsolicited = on_unsolicited
        self.on_lost = on_lost
        self.handshake_timeout = handshake_timeout
        self.state = ConnectionState.DISCONNECTED
        self.frame_errors = 0
        self._transport: Transport | None = None
        self._reader: asyncio.Task[None] | None = None
        self._deframer = Deframer(codec)
        self._pending: tuple[bytes, FrameFilter, asyncio.Future[Frame]] | None = None
        self._lock = asyncio.Lock()
        self._discarding = False
        self._last_frame_at = 0.0
        self._last_byte_at = 0.0
        self.late_frames = 0
        self.partial_drops = 0  # unfinished frames given up on (noise that lost its end)

    @property
    def is_open(self) -> bool:
        """Whether requests can be sent now."""
        return self.state is ConnectionState.CONNECTED

    async def open(self) -> None:
        """Open the link and run the handshake; raises `LinkError` or `AuthenticationError`."""
        await self.close()
        self.state = ConnectionState.CONNECTING
        transport = self.transport_factory(self.url, self.settings)
        try:
            # Bounded: a serial server that drops packets would otherwise stall for minutes.
            async with asyncio.timeout(self.handshake_timeout):
                await transport.open()
            raw = RawReader(transport)
            await self.session.start(transport, raw, self.handshake_timeout)
        except TimeoutError as exc:
            await transport.close()
            self.state = ConnectionState.FAILED
            raise LinkError(f"{self.url}: no greeting from the device") from exc
        except BaseException:
            await transport.close()
            self.state = ConnectionState.FAILED
            raise
        self._transport = transport
        self._deframer.clear()
        self.state = ConnectionState.CONNECTED
        self._reader = asyncio.create_task(self._read_loop(transport), name=f"link-{self.name}")
        if raw.buffer:
            self._receive(bytes(raw.buffer))

    async def close(self) -> None:
        """Close the link; a request in flight fails with `LinkClosedError`."""
        reader, self._reader = self._reader, None
        transport, self._transport = self._transport, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if transport is not None:
            await transport.close()
        self._fail_pending(LinkClosedError(f"{self.url}: link closed"))
        if self.state is not ConnectionState.FAILED:
            self.state = ConnectionState.DISCONNECTED

    async def request(self, payload: bytes, accept: FrameFilter, timeout: float) -> Frame:
        """Send one request and wait for the frame `accept` takes as its reply."""
        async with self._lock:
            transport = self._transport
            if transport is None or not self.is_open:
                raise LinkClosedError(f"{self.url}: link is not open")
            wire = self.codec.encode(self.session.prepare(payload))
            future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._pending = (payload, accept, future)
            try:
                transport.write(wire)
                log.debug("%s >> %r", self.name, wire)
                async with asyncio.timeout(timeout):
                    return await future
            except TimeoutError as exc:
                # An unfinished frame the line has been quiet on is noise that lost its end;
                # kept, it would be glued to the front of the next reply and spoil it.
                self._drop_partial(PARTIAL_QUIET)
                raise DeviceTimeoutError(f"{self.name}: no reply within {timeout:g} s") from exc
            finally:
                self._pending = None

    async def discard_until_quiet(self, quiet: float, limit: float) -> int:
        """Drop whatever arrives until the line has been quiet for `quiet` s (at most `limit` s).

        After a request timed out its reply may still come; it must not be taken as the answer
        to the next request. Returns how many late frames were dropped.
        """
        async with self._lock:
            loop = asyncio.get_running_loop()
            before = self.late_frames
            self._discarding = True
            started = loop.time()
            self._last_frame_at = started
            try:
                while self.is_open:
                    now = loop.time()
                    quiet_until = self._last_frame_at + quiet
                    if now >= quiet_until or now - started >= limit:
                        break
                    await asyncio.sleep(min(quiet_until, started + limit) - now)
            finally:
                self._discarding = False
            self._drop_partial(quiet)  # not if the limit ended it with bytes still coming
            return self.late_frames - before

    def _drop_partial(self, quiet: float) -> None:
        """Forget bytes that do not make a frame, when nothing has arrived for `quiet` s (a
        frame still arriving, a slow reply or an event, is left to finish)."""
        pending = self._deframer.pending
        silent = asyncio.get_running_loop().time() - self._last_byte_at
        if pending and silent >= quiet:
            self._deframer.clear()
            self.partial_drops += 1
            log.info(
                "%s: dropped %d bytes that never became a frame (quiet for %.1f s)",
                self.name,
                pending,
                silent,
            )

    async def send_only(self, payload: bytes) -> None:
        """Send a request that gets no reply."""
        async with self._lock:
            transport = self._transport
            if transport is None or not self.is_open:
                raise LinkClosedError(f"{self.url}: link is not open")
            transport.write(self.codec.encode(self.session.prepare(payload)))

    async def _read_loop(self, transport: Transport) -> None:
        try:
            while True:
                self._receive(await transport.read())
        except LinkClosedError as exc:
            lost: Exception = exc
        except Exception as exc:  # a transport fault must not kill the room
            log.exception("%s: read failed", self.name)
            lost = LinkClosedError(f"{self.url}: {exc}")
        self._reader = None
        self.state = ConnectionState.DISCONNECTED
        self._fail_pending(lost)
        if self._transport is transport:
            self._transport = None
            await transport.close()
        if self.on_lost is not None:
            self.on_lost(lost)

    def _receive(self, data: bytes) -> None:
        log.debug("%s << %r", self.name, data)
        self._last_byte_at = asyncio.get_running_loop().time()
        if self._discarding:
            self._last_frame_at = asyncio.get_running_loop().time()
        for item in self._deframer.feed(data):
            if isinstance(item, FrameError):
                self.frame_errors += 1
                log.info("%s: dropped a bad frame: %s", self.name, item)
                continue
            self._dispatch(item)

    def _dispatch(self, frame: Frame) -> None:
        if self._discarding:
            self.late_frames += 1
            self._last_frame_at = asyncio.get_running_loop().time()
            log.info("%s: dropped a late reply %r", self.name, frame.raw)
            return
        pending = self._pending
        if frame.kind is FrameKind.AUTH_ERROR:
            self._fail_pending(
                AuthenticationError(f"{self.name}: the device refused the password", code="ERRA")
            )
            return
        if pending is not None and not pending[2].done():
            payload, accept, future = pending
            verdict = self.codec.reply_matches(payload, frame)
            if verdict is not False and frame.kind is not FrameKind.EVENT and accept(frame):
                future.set_result(frame)
                return
        if self.on_unsolicited is not None:
            self.on_unsolicited(frame)

    def _fail_pending(self, exc: Exception) -> None:
        pending = self._pending
        if pending is not None and not pending[2].done():
            pending[2].set_exception(exc)
