"""USB control transfers as bytes: the 8-byte SETUP packet, then the data stage.

A request is the SETUP packet as it goes on the bus (bmRequestType, bRequest, wValue, wIndex,
wLength; the 16-bit fields little-endian) followed, for an OUT transfer, by the data to send.
The codec sets wLength of an OUT request from its data, as other codecs add their checksum.
`UsbTransport` answers each transfer with the same SETUP packet, wLength now saying how many
bytes moved, followed for an IN transfer by the bytes read. A request the device refused with a
STALL (libusb's PIPE error) is answered with wLength `FF FF` and no data, so a profile can file
it under `errors` (`?? ?? ?? ?? ?? ?? FF FF`).
"""

from __future__ import annotations

from tribune.drivers.codecs.base import Codec, Frame
from tribune.errors import FrameError, ProtocolError

SETUP_LENGTH = 8
DIRECTION_IN = 0x80
STALLED = 0xFFFF


def setup_fields(setup: bytes) -> tuple[int, int, int, int, int]:
    """(bmRequestType, bRequest, wValue, wIndex, wLength) of a SETUP packet."""
    return (
        setup[0],
        setup[1],
        int.from_bytes(setup[2:4], "little"),
        int.from_bytes(setup[4:6], "little"),
        int.from_bytes(setup[6:8], "little"),
    )


def setup_packet(request_type: int, request: int, value: int, index: int, length: int) -> bytes:
    """The 8 bytes of a SETUP packet."""
    return (
        bytes([request_type, request])
        + value.to_bytes(2, "little")
        + index.to_bytes(2, "little")
        + length.to_bytes(2, "little")
    )


class UsbControlCodec(Codec):
    """Frames control transfers for `UsbTransport`: SETUP packet + data, both ways."""

    name = "usb"

    def __init__(self, *, max_length: int = 4096) -> None:
        self.max_length = max_length

    def encode(self, payload: bytes) -> bytes:
        """The SETUP packet (wLength filled in for OUT) and the OUT data."""
        if len(payload) < SETUP_LENGTH:
            raise ProtocolError(f"a control request needs 8 SETUP bytes, got {payload.hex(' ')}")
        setup, data = payload[:SETUP_LENGTH], payload[SETUP_LENGTH:]
        if setup[0] & DIRECTION_IN:
            if data:
                raise ProtocolError("an IN control request carries no data; wLength asks for it")
            return payload
        return setup[:6] + len(data).to_bytes(2, "little") + data

    def decode(self, buf: bytes) -> tuple[int, Frame | None]:
        """One transfer's answer: the SETUP echo and, for IN, the bytes read."""
        if len(buf) < SETUP_LENGTH:
            return 0, None
        length = int.from_bytes(buf[6:8], "little")
        size = SETUP_LENGTH
        if buf[0] & DIRECTION_IN and length != STALLED:
            size += length
        if size > self.max_length:
            raise FrameError(f"a {size}-byte control transfer is over {self.max_length}", len(buf))
        if len(buf) < size:
            return 0, None
        frame = bytes(buf[:size])
        return size, Frame(data=frame, raw=frame)

    def reply_matches(self, request: bytes, frame: Frame) -> bool | None:
        """The answer to a request echoes its request type, request, value and index."""
        return frame.data[:6] == request[:6]
