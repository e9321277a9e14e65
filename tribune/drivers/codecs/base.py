"""The codec contract: pure code over bytes, no I/O.

A codec turns a payload into the bytes on the wire (`encode`) and a byte stream back into frames
(`decode`). `Deframer` keeps the receive buffer and applies `decode` until it needs more bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from tribune.errors import FrameError


class FrameKind(StrEnum):
    """What a frame is, as far as the codec alone can tell."""

    DATA = "data"  # a reply or a notification; the request matcher decides which
    PROMPT = "prompt"  # a bare prompt/ack with no data (Epson `:` after a set command)
    GREETING = "greeting"  # a session greeting (PJLink `PJLINK 0` / `PJLINK 1 <rand>`)
    AUTH_ERROR = "auth_error"  # the device refused our credentials (PJLink `PJLINK ERRA`)
    EVENT = "event"  # unsolicited by its form (PJLink `%2LKUP=`), never a reply


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: `data` is the payload without framing; `raw` is the bytes as received."""

    data: bytes
    raw: bytes
    kind: FrameKind = FrameKind.DATA
    fields: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """The payload as text (latin-1, so every byte maps to one character)."""
        return self.data.decode("latin-1")


class Codec(ABC):
    """Frames payloads for one protocol family."""

    name: str = ""

    @abstractmethod
    def encode(self, payload: bytes) -> bytes:
        """Return the bytes to write for `payload` (terminator, checksum... added)."""

    @abstractmethod
    def decode(self, buf: bytes) -> tuple[int, Frame | None]:
        """Decode the start of `buf`.

        Returns `(0, None)` when more bytes are needed, `(n, None)` when `n` bytes of junk were
        skipped, `(n, frame)` when a frame of `n` bytes was decoded. A corrupt frame raises
        `FrameError` whose `consumed` says how many bytes to drop to resynchronise.
        """

    def reply_matches(self, request: bytes, frame: Frame) -> bool | None:
        """Whether `frame` answers `request`; None when only the profile's pattern can tell."""
        return None


class Deframer:
    """Receive buffer over a codec: feed bytes, get frames and frame errors in order."""

    def __init__(self, codec: Codec, *, max_buffer: int = 65536) -> None:
        self.codec = codec
        self.max_buffer = max_buffer
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Frame | FrameError]:
        """Add received bytes; yield every complete frame (or frame error) now available."""
        self._buf += data
        while self._buf:
            try:
                consumed, frame = self.codec.decode(bytes(self._buf))
            except FrameError as exc:
                del self._buf[: exc.consumed]
                yield exc
                continue
            if consumed == 0:
                if len(self._buf) > self.max_buffer:
                    dropped = len(self._buf)
                    self._buf.clear()
                    yield FrameError(f"no frame in {dropped} bytes; buffer dropped", dropped)
                break
            del self._buf[:consumed]
            if frame is not None:
                yield frame

    def clear(self) -> None:
        """Forget buffered bytes (after a reconnect)."""
        self._buf.clear()

    @property
    def pending(self) -> int:
        """Bytes received but not yet framed."""
        return len(self._buf)
