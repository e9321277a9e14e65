"""Binary frames with a length and a one-byte checksum: NEC projectors, Samsung MDC, Sony."""

from __future__ import annotations

from tribune.drivers.codecs.base import Codec, Frame
from tribune.drivers.codecs.checksum import CHECKSUMS
from tribune.errors import ConfigError, FrameError


class BinaryCodec(Codec):
    """Frames are `payload + checksum(payload[checksum_from:]) + suffix`.

    The frame length is `fixed_length`, or the byte at `length_index` plus `length_overhead`.
    A frame must start with a byte of `sync` (when given); anything else is skipped as junk.
    """

    name = "binary"

    def __init__(
        self,
        *,
        checksum: str = "sum8",
        checksum_from: int = 0,
        suffix: bytes = b"",
        sync: bytes = b"",
        length_index: int | None = None,
        length_overhead: int = 0,
        fixed_length: int | None = None,
        max_length: int = 512,
    ) -> None:
        if checksum != "none" and checksum not in CHECKSUMS:
            known = ", ".join([*CHECKSUMS, "none"])
            raise ConfigError(f"binary codec: unknown checksum {checksum!r} (known: {known})")
        if (fixed_length is None) == (length_index is None):
            raise ConfigError("binary codec: give exactly one of 'fixed_length', 'length_index'")
        self.checksum = checksum
        self.checksum_from = checksum_from
        self.suffix = suffix
        self.sync = frozenset(sync)
        self.length_index = length_index
        self.length_overhead = length_overhead
        self.fixed_length = fixed_length
        self.max_length = max_length
        self._fixed_size = fixed_length or 0
        self._trailer = (0 if checksum == "none" else 1) + len(suffix)
        # The shortest frame still holds its length byte (or sync byte) and its trailer.
        self._min_length = max(length_index or 0, checksum_from - 1) + 1 + self._trailer
        if fixed_length is not None and fixed_length < self._min_length:
            raise ConfigError(f"binary codec: 'fixed_length' must be at least {self._min_length}")

    def _sum(self, data: bytes) -> int:
        return CHECKSUMS[self.checksum](data[self.checksum_from :])

    def encode(self, payload: bytes) -> bytes:
        """Return the payload with its checksum and suffix appended."""
        if self.checksum == "none":
            return payload + self.suffix
        return payload + bytes([self._sum(payload)]) + self.suffix

    def decode(self, buf: bytes) -> tuple[int, Frame | None]:
        """Decode one frame; a bad checksum or suffix drops one byte so the stream resyncs."""
        if not buf:
            return 0, None
        if self.sync and buf[0] not in self.sync:
            return 1, None
        if self.length_index is None:
            size = self._fixed_size
        else:
            if len(buf) <= self.length_index:
                return 0, None
            size = buf[self.length_index] + self.length_overhead
            if not self._min_length <= size <= self.max_length:
                raise FrameError(f"implausible frame length {size}", 1)
        if len(buf) < size:
            return 0, None
        frame = buf[:size]
        data = frame[: size - self._trailer]
        if self.suffix and not frame.endswith(self.suffix):
            raise FrameError(f"frame does not end with {self.suffix.hex()}", 1)
        if self.checksum != "none":
            got, want = frame[len(data)], self._sum(data)
            if got != want:
                raise FrameError(f"checksum {got:02x}, expected {want:02x}", 1)
        return size, Frame(data=data, raw=frame)
