"""Properties every codec keeps on hostile input: fuzzing, round trips, resync, byte-at-a-time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tribune.drivers.codecs import (
    BinaryCodec,
    Codec,
    Deframer,
    Frame,
    LineCodec,
    PjlinkCodec,
    PromptCodec,
)
from tribune.errors import FrameError, ProtocolError

NEC_SYNC = bytes([0x20, 0x21, 0x22, 0x23, 0xA0, 0xA1, 0xA2, 0xA3])

TEXT = st.binary(min_size=1, max_size=40)
WORD = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=?", min_size=1, max_size=30)


def _pjlink_payload(klass: str, command: str, params: str) -> bytes:
    return f"%{klass}{command}={params}".encode()


def _length_frame(sync: bytes, header: int) -> st.SearchStrategy[bytes]:
    """A sync byte, `header` more bytes, the data length, then that much data."""
    return st.builds(
        lambda first, head, data: bytes([first, *head, len(data)]) + data,
        st.sampled_from(sync),
        st.binary(min_size=header, max_size=header),
        st.binary(max_size=40),
    )


@dataclass(frozen=True)
class Case:
    """A codec configuration, its valid payloads, and how a reply to them looks on the wire."""

    make: Callable[[], Codec]
    payloads: st.SearchStrategy[bytes]
    wire: Callable[[Codec, bytes], bytes]
    # Bytes that may not appear in junk for the next frame to be found after it.
    resync: bytes = b""
    forbidden_junk: bytes = b""


def _encoded(codec: Codec, payload: bytes) -> bytes:
    return codec.encode(payload)


CASES = {
    "line": Case(
        make=LineCodec,
        payloads=TEXT.filter(lambda p: b"\r" not in p and b"\n" not in p),
        wire=_encoded,
        resync=b"\r",
    ),
    "line-stx-etx": Case(
        make=lambda: LineCodec(terminator=b"\x03", accept=(b"\x03",), prefix=b"\x02"),
        payloads=TEXT.filter(lambda p: b"\x02" not in p and b"\x03" not in p),
        wire=_encoded,
        resync=b"\x03",
    ),
    "prompt": Case(
        make=PromptCodec,
        payloads=WORD.map(str.encode).filter(lambda p: not p.startswith(b"IMEVENT")),
        wire=lambda codec, payload: codec.encode(payload) + b":",
        resync=b"\r",
    ),
    "binary-nec": Case(
        make=lambda: BinaryCodec(length_index=4, length_overhead=6, sync=NEC_SYNC),
        payloads=_length_frame(NEC_SYNC, 3),
        wire=_encoded,
        forbidden_junk=NEC_SYNC,
    ),
    "binary-samsung": Case(
        make=lambda: BinaryCodec(checksum_from=1, length_index=3, length_overhead=5, sync=b"\xaa"),
        payloads=_length_frame(b"\xaa", 2),
        wire=_encoded,
        forbidden_junk=b"\xaa",
    ),
    "binary-sony": Case(
        make=lambda: BinaryCodec(
            checksum="or", checksum_from=1, suffix=b"\x9a", sync=b"\xa9", fixed_length=8
        ),
        payloads=st.binary(min_size=5, max_size=5).map(lambda body: b"\xa9" + body),
        wire=_encoded,
        forbidden_junk=b"\xa9",
    ),
    "pjlink": Case(
        make=PjlinkCodec,
        payloads=st.builds(
            _pjlink_payload,
            st.sampled_from("12"),
            st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=4),
            st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:", max_size=60),
        ),
        wire=_encoded,
        resync=b"\r",
    ),
}

ALL = pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())


def _frames(codec: Codec, wire: bytes, *, chunk: int | None = None) -> list[Frame | FrameError]:
    deframer = Deframer(codec)
    if chunk is None:
        return list(deframer.feed(wire))
    out: list[Frame | FrameError] = []
    for at in range(0, len(wire), chunk):
        out.extend(deframer.feed(wire[at : at + chunk]))
    return out


def _decode(codec: Codec, buf: bytes) -> tuple[int, Frame | None] | ProtocolError:
    """Decode, returning instead of raising the only errors a decoder may raise."""
    try:
        return codec.decode(buf)
    except ProtocolError as error:
        return error


def _datas(items: list[Frame | FrameError]) -> list[bytes]:
    return [item.data for item in items if isinstance(item, Frame)]


@ALL
@settings(max_examples=150, deadline=None)
@given(buf=st.binary(max_size=300))
def test_decode_only_raises_frame_errors_and_consumes_sanely(case: Case, buf: bytes) -> None:
    result = _decode(case.make(), buf)
    if isinstance(result, ProtocolError):
        if isinstance(result, FrameError):
            assert 1 <= result.consumed <= len(buf)
        return
    consumed, frame = result
    assert 0 <= consumed <= len(buf)
    if frame is not None:
        assert consumed >= 1
        assert frame.raw == buf[: len(frame.raw)]


@ALL
@settings(max_examples=100, deadline=None)
@given(buf=st.binary(max_size=600), chunk=st.integers(min_value=1, max_value=64))
def test_deframer_terminates_and_keeps_only_a_tail(case: Case, buf: bytes, chunk: int) -> None:
    deframer = Deframer(case.make(), max_buffer=256)
    for at in range(0, len(buf), chunk):
        for _ in deframer.feed(buf[at : at + chunk]):
            pass
        assert deframer.pending <= 256


@ALL
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_round_trip(case: Case, data: st.DataObject) -> None:
    codec = case.make()
    payload = data.draw(case.payloads)
    wire = case.wire(codec, payload)
    consumed, frame = codec.decode(wire)
    assert consumed == len(wire)
    assert frame is not None
    assert frame.data == payload


@ALL
@settings(max_examples=100, deadline=None)
@given(data=st.data(), junk=st.binary(max_size=80))
def test_good_frame_is_found_after_junk(case: Case, data: st.DataObject, junk: bytes) -> None:
    assume(not any(byte in case.forbidden_junk for byte in junk))
    assume(b"ESC/VP.net" not in junk)
    codec = case.make()
    payload = data.draw(case.payloads)
    wire = case.wire(codec, payload)
    out = _frames(codec, junk + case.resync + wire + wire)
    datas = _datas(out)
    assert datas[-2:] == [payload, payload]


@ALL
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_one_byte_at_a_time_gives_the_same_frames(case: Case, data: st.DataObject) -> None:
    payloads = data.draw(st.lists(case.payloads, min_size=1, max_size=5))
    codec = case.make()
    wire = b"".join(case.wire(codec, payload) for payload in payloads)
    whole = _frames(case.make(), wire)
    assert _datas(whole) == payloads
    assert _datas(_frames(case.make(), wire, chunk=1)) == payloads
