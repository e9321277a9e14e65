"""Text lines ended by a terminator: Extron SIS, Kramer P3000, SMART, LG, Panasonic, VC codecs."""

from __future__ import annotations

from collections.abc import Iterable

from tribune.drivers.codecs.base import Codec, Frame
from tribune.errors import ConfigError, FrameError


def _find_first(buf: bytes, markers: Iterable[bytes]) -> tuple[int, bytes] | None:
    """Earliest occurrence of any marker in `buf` as `(index, marker)`; longest wins a tie."""
    best: tuple[int, bytes] | None = None
    for marker in markers:
        at = buf.find(marker)
        if at < 0:
            continue
        if best is None or at < best[0] or (at == best[0] and len(marker) > len(best[1])):
            best = (at, marker)
    return best


class LineCodec(Codec):
    """Frames are lines: `prefix + payload + terminator` out, any accepted terminator in."""

    name = "line"

    def __init__(
        self,
        *,
        terminator: bytes = b"\r",
        accept: Iterable[bytes] = (b"\r", b"\n"),
        prefix: bytes = b"",
        max_length: int = 2048,
    ) -> None:
        self.terminator = terminator
        self.accept = tuple(accept)
        self.prefix = prefix
        self.max_length = max_length
        if not self.accept or any(not term for term in self.accept):
            raise ConfigError("line codec: 'accept' needs at least one non-empty terminator")
        if max_length < 1:
            raise ConfigError("line codec: 'max_length' must be positive")

    def encode(self, payload: bytes) -> bytes:
        """Return `prefix + payload + terminator`."""
        return self.prefix + payload + self.terminator

    def decode(self, buf: bytes) -> tuple[int, Frame | None]:
        """Decode one line; empty lines and bytes before a prefix are skipped as junk."""
        end = _find_first(buf, self.accept)
        line = buf if end is None else buf[: end[0]]
        if self.prefix:
            # The last prefix starts the frame: anything before it is noise or a truncated frame.
            start = line.rfind(self.prefix)
            if start > 0:
                return start, None
        if end is None:
            if len(buf) > self.max_length:
                raise FrameError(f"no terminator within {self.max_length} bytes", len(buf))
            return 0, None
        consumed = end[0] + len(end[1])
        if not line:
            return consumed, None
        if len(line) > self.max_length:
            raise FrameError(f"line longer than {self.max_length} bytes", consumed)
        data = line.removeprefix(self.prefix) if self.prefix else line
        return consumed, Frame(data=data, raw=buf[:consumed])
