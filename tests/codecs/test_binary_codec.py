"""BinaryCodec against frames from the NEC, Samsung MDC and Sony protocol documents."""

from __future__ import annotations

import pytest

from tribune.drivers.codecs import BinaryCodec, Deframer, Frame
from tribune.errors import ConfigError, FrameError

NEC_SYNC = bytes([0x20, 0x21, 0x22, 0x23, 0xA0, 0xA1, 0xA2, 0xA3])


def nec() -> BinaryCodec:
    """NEC projector replies: sum8 over all bytes, data length at index 4, 6 bytes around it."""
    return BinaryCodec(checksum="sum8", length_index=4, length_overhead=6, sync=NEC_SYNC)


def samsung() -> BinaryCodec:
    """Samsung MDC: header 0xAA, sum8 of everything but the header, length at index 3."""
    return BinaryCodec(
        checksum="sum8", checksum_from=1, length_index=3, length_overhead=5, sync=b"\xaa"
    )


def sony() -> BinaryCodec:
    """Sony projectors: 8-byte blocks A9 .. 9A, OR of B1..B5 in B6."""
    return BinaryCodec(checksum="or", checksum_from=1, suffix=b"\x9a", sync=b"\xa9", fixed_length=8)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("payload", "wire"),
    [
        ("02 00 00 00 00", "02 00 00 00 00 02"),  # 015. POWER ON
        ("03 8A 00 00 00", "03 8A 00 00 00 8D"),  # 037. INFORMATION REQUEST
        ("00 85 00 00 01 00", "00 85 00 00 01 00 86"),  # 078-1. SETTING REQUEST
        ("00 BF 00 00 01 00", "00 BF 00 00 01 00 C0"),  # 305-1. BASE MODEL TYPE REQUEST
    ],
)
def test_nec_commands(payload: str, wire: str) -> None:
    assert nec().encode(h(payload)) == h(wire)


def test_nec_power_on_ack() -> None:
    # `22h 00h <ID1> <ID2> 00h <CKS>`, here with ID1=01h, ID2=40h as in the manual's example.
    wire = h("22 00 01 40 00 63")
    assert nec().decode(wire) == (6, Frame(data=wire[:-1], raw=wire))


def test_nec_error_reply_carries_err1_err2() -> None:
    wire = h("A2 00 01 40 02 01 00 E6")
    consumed, frame = nec().decode(wire)
    assert consumed == 8
    assert frame is not None
    assert frame.data[5:7] == h("01 00")


def test_nec_information_reply_with_98_data_bytes() -> None:
    # Lamp usage 18000 s (5 h) in DATA83-86, little-endian: 50h 46h 00h 00h.
    data = bytearray(98)
    data[82:86] = h("50 46 00 00")
    payload = h("23 8A 01 40 62") + bytes(data)
    wire = payload + bytes([sum(payload) & 0xFF])
    codec = nec()
    assert codec.decode(wire[:50]) == (0, None)
    assert codec.decode(wire) == (104, Frame(data=payload, raw=wire))


def test_nec_skips_bytes_that_cannot_start_a_reply() -> None:
    assert nec().decode(h("00 22 00 01 40 00 63")) == (1, None)


@pytest.mark.parametrize(
    ("payload", "wire"),
    [
        ("AA 11 FE 01 01", "AA 11 FE 01 01 11"),  # power on, all displays (no ACK)
        ("AA 11 FF 01 01", "AA 11 FF 01 01 12"),  # the manual's example: 11+FF+01+01=112
        ("AA 11 01 01 01", "AA 11 01 01 01 14"),  # power on, display ID 1
        ("AA 11 01 00", "AA 11 01 00 12"),  # get power status
    ],
)
def test_samsung_commands(payload: str, wire: str) -> None:
    assert samsung().encode(h(payload)) == h(wire)


def test_samsung_ack() -> None:
    wire = h("AA FF 01 03 41 11 01 56")  # ACK 'A', r-CMD 0x11, power on
    assert samsung().decode(wire) == (8, Frame(data=wire[:-1], raw=wire))


@pytest.mark.parametrize(
    ("payload", "wire"),
    [
        ("A9 17 2E 00 00 00", "A9 17 2E 00 00 00 3F 9A"),  # power on
        ("A9 01 02 01 00 00", "A9 01 02 01 00 00 03 9A"),  # get STATUS POWER (item 0102h)
    ],
)
def test_sony_commands(payload: str, wire: str) -> None:
    assert sony().encode(h(payload)) == h(wire)


@pytest.mark.parametrize(
    "wire",
    [
        "A9 00 00 03 00 00 03 9A",  # ACK
        "A9 01 01 03 00 00 03 9A",  # NAK: undefined command
        "A9 01 02 02 00 03 03 9A",  # STATUS POWER reply: power on (0003h)
    ],
)
def test_sony_replies(wire: str) -> None:
    raw = h(wire)
    assert sony().decode(raw) == (8, Frame(data=raw[:6], raw=raw))


def test_bad_checksum_drops_one_byte_then_resyncs() -> None:
    bad, good = h("AA FF 01 03 41 11 01 57"), h("AA FF 01 03 41 11 01 56")
    with pytest.raises(FrameError) as error:
        samsung().decode(bad)
    assert error.value.consumed == 1
    out = list(Deframer(samsung()).feed(bad + good))
    assert isinstance(out[0], FrameError)
    assert out[-1] == Frame(data=good[:-1], raw=good)


def test_bad_suffix_is_a_frame_error() -> None:
    with pytest.raises(FrameError):
        sony().decode(h("A9 17 2E 00 00 00 3F 9B"))


def test_implausible_length_is_a_frame_error() -> None:
    codec = BinaryCodec(length_index=1, length_overhead=0, sync=b"\x01")
    with pytest.raises(FrameError):
        codec.decode(h("01 01"))


@pytest.mark.parametrize("checksum", ["sum8", "or", "xor", "none"])
def test_round_trip_with_each_checksum(checksum: str) -> None:
    codec = BinaryCodec(checksum=checksum, fixed_length=6 if checksum == "none" else 7)
    payload = h("10 20 30 40 50 60")
    wire = codec.encode(payload)
    assert codec.decode(wire) == (len(wire), Frame(data=payload, raw=wire))


def test_bad_options() -> None:
    with pytest.raises(ConfigError):
        BinaryCodec(checksum="crc32", fixed_length=8)
    with pytest.raises(ConfigError):
        BinaryCodec()
    with pytest.raises(ConfigError):
        BinaryCodec(fixed_length=8, length_index=2)
    with pytest.raises(ConfigError):
        BinaryCodec(fixed_length=1)
