"""Epson ESC/VP21: a reply is the text before the `:` prompt the projector prints when ready."""

from __future__ import annotations

from collections.abc import Iterable

from tribune.drivers.codecs.base import Codec, Frame, FrameKind
from tribune.errors import ConfigError, FrameError

_BLANK = b" \t\r\n\x00"

# ESC/VP.net (TCP 3629) answers the session handshake with a 16-byte binary header before any
# text: "ESC/VP.net", version 0x10, type, 2 reserved bytes, status, number of extra headers
# (18 bytes each). Framed here so it cannot be glued to the first text reply.
VPNET_MAGIC = b"ESC/VP.net"
_VPNET_HEADER = 16
_VPNET_EXTRA = 18


class PromptCodec(Codec):
    """Frames end at the prompt: `PWR=01\\r:` is one reply, a bare `:` is an acknowledgement."""

    name = "prompt"

    def __init__(
        self,
        *,
        terminator: bytes = b"\r",
        prompt: bytes = b":",
        events: Iterable[bytes] = (b"IMEVENT",),
        max_length: int = 2048,
    ) -> None:
        self.terminator = terminator
        self.prompt = prompt
        self.events = tuple(events)
        self.max_length = max_length
        if not terminator or not prompt:
            raise ConfigError("prompt codec: 'terminator' and 'prompt' must not be empty")

    def encode(self, payload: bytes) -> bytes:
        """Return `payload + terminator`."""
        return payload + self.terminator

    def decode(self, buf: bytes) -> tuple[int, Frame | None]:
        """Decode one reply (text then prompt), a bare prompt, or an unsolicited line."""
        blank = len(buf) - len(buf.lstrip(_BLANK))
        if blank:
            return blank, None
        if buf.startswith(self.prompt):
            n = len(self.prompt)
            return n, Frame(data=b"", raw=buf[:n], kind=FrameKind.PROMPT)
        if VPNET_MAGIC.startswith(buf[: len(VPNET_MAGIC)]):
            return self._decode_vpnet(buf)
        end = buf.find(self.terminator)
        if end < 0:
            if len(buf) > self.max_length:
                raise FrameError(f"no terminator within {self.max_length} bytes", len(buf))
            return 0, None
        line_end = end + len(self.terminator)
        if end > self.max_length:
            raise FrameError(f"line longer than {self.max_length} bytes", line_end)
        data = buf[:end].strip(_BLANK)
        if data.startswith(self.events):
            # Notifications are not followed by a prompt; never wait for one.
            return line_end, Frame(data=data, raw=buf[:line_end], kind=FrameKind.EVENT)
        rest = buf[line_end:]
        after = len(rest) - len(rest.lstrip(_BLANK))
        if after == len(rest):
            return 0, None
        if rest[after:].startswith(self.prompt):
            consumed = line_end + after + len(self.prompt)
            return consumed, Frame(data=data, raw=buf[:consumed])
        # Another line follows instead of the prompt: this one stands alone (unsolicited).
        return line_end, Frame(data=data, raw=buf[:line_end])

    def _decode_vpnet(self, buf: bytes) -> tuple[int, Frame | None]:
        if len(buf) < _VPNET_HEADER:
            return 0, None
        size = _VPNET_HEADER + buf[15] * _VPNET_EXTRA
        if len(buf) < size:
            return 0, None
        fields = {"protocol": "esc/vp.net", "type": f"{buf[11]:02x}", "status": f"{buf[14]:02x}"}
        return size, Frame(data=buf[:size], raw=buf[:size], kind=FrameKind.GREETING, fields=fields)
