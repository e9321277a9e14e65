"""LineCodec against replies quoted from Extron, Kramer, LG, Panasonic and Cisco documents."""

from __future__ import annotations

import pytest

from tribune.drivers.codecs import Deframer, Frame, LineCodec
from tribune.errors import ConfigError, FrameError


def test_encode_adds_prefix_and_terminator() -> None:
    assert LineCodec().encode(b"#VID 1>2") == b"#VID 1>2\r"
    assert LineCodec(terminator=b"\x03", prefix=b"\x02").encode(b"PON") == b"\x02PON\x03"


def test_kramer_p3000_reply_with_crlf() -> None:
    codec = LineCodec()
    buf = b"~01@VID 1>2 OK\r\n"
    consumed, frame = codec.decode(buf)
    assert consumed == len(buf) - 1
    assert frame == Frame(data=b"~01@VID 1>2 OK", raw=b"~01@VID 1>2 OK\r")
    # The LF left behind is an empty line: consumed, never a frame.
    assert codec.decode(b"\n") == (1, None)


def test_extron_sis_tie_reply() -> None:
    frames = list(Deframer(LineCodec()).feed(b"Out2 In1 All\r\n"))
    assert frames == [Frame(data=b"Out2 In1 All", raw=b"Out2 In1 All\r")]


def test_lg_ack_ends_with_x() -> None:
    # LG: `ka 01 01<CR>` powers set 01 on; the acknowledgement `a 01 OK01x` ends with 'x'.
    codec = LineCodec(terminator=b"\r", accept=(b"x",))
    assert codec.encode(b"ka 01 01") == b"ka 01 01\r"
    assert codec.decode(b"a 01 OK01x") == (10, Frame(data=b"a 01 OK01", raw=b"a 01 OK01x"))


def test_panasonic_stx_etx_and_junk_before_prefix() -> None:
    codec = LineCodec(terminator=b"\x03", accept=(b"\x03",), prefix=b"\x02")
    assert codec.decode(b"\x02001\x03") == (5, Frame(data=b"001", raw=b"\x02001\x03"))
    frames = list(Deframer(codec).feed(b"\xff\x00\x02ER401\x03\x02PON\x03"))
    assert [f.data for f in frames if isinstance(f, Frame)] == [b"ER401", b"PON"]


def test_truncated_frame_is_dropped_at_the_next_prefix() -> None:
    codec = LineCodec(terminator=b"\x03", accept=(b"\x03",), prefix=b"\x02")
    assert codec.decode(b"\x02PO\x02QPW\x03") == (3, None)


def test_cisco_style_multiline_reply_yields_one_frame_per_line() -> None:
    wire = b"*r StandbyDeactivateResult (status=OK):\r\n** end\r\n"
    frames = list(Deframer(LineCodec()).feed(wire))
    assert [f.data for f in frames if isinstance(f, Frame)] == [
        b"*r StandbyDeactivateResult (status=OK):",
        b"** end",
    ]


def test_empty_lines_are_skipped() -> None:
    assert list(Deframer(LineCodec()).feed(b"\r\n\r\n\n")) == []


def test_waits_for_terminator() -> None:
    assert LineCodec().decode(b"~01@VID") == (0, None)


def test_overlong_line_is_a_frame_error() -> None:
    codec = LineCodec(max_length=8)
    with pytest.raises(FrameError) as unterminated:
        codec.decode(b"x" * 9)
    assert unterminated.value.consumed == 9
    with pytest.raises(FrameError) as terminated:
        codec.decode(b"x" * 9 + b"\rOK\r")
    assert terminated.value.consumed == 10
    assert codec.decode(b"OK\r") == (3, Frame(data=b"OK", raw=b"OK\r"))


def test_bad_options() -> None:
    with pytest.raises(ConfigError):
        LineCodec(accept=())
    with pytest.raises(ConfigError):
        LineCodec(accept=(b"",))
