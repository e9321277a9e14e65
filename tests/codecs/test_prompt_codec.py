"""PromptCodec against the exchanges in Epson's ESC/VP21 Command User's Guide."""

from __future__ import annotations

from tribune.drivers.codecs import Deframer, Frame, FrameKind, PromptCodec


def test_encode_adds_cr() -> None:
    assert PromptCodec().encode(b"PWR ON") == b"PWR ON\r"
    # The null command is a bare CR; the projector answers with the prompt.
    assert PromptCodec().encode(b"") == b"\r"


def test_get_reply_is_the_text_before_the_prompt() -> None:
    assert PromptCodec().decode(b"PWR=01\r:") == (8, Frame(data=b"PWR=01", raw=b"PWR=01\r:"))


def test_bare_prompt_acknowledges_a_set_command() -> None:
    assert PromptCodec().decode(b":") == (1, Frame(data=b"", raw=b":", kind=FrameKind.PROMPT))


def test_illegal_command_reply() -> None:
    assert PromptCodec().decode(b"ERR\r:") == (5, Frame(data=b"ERR", raw=b"ERR\r:"))


def test_whitespace_around_is_stripped() -> None:
    frames = list(Deframer(PromptCodec()).feed(b"\r\n SOURCE=30 \r\n:"))
    assert frames == [Frame(data=b"SOURCE=30", raw=b"SOURCE=30 \r\n:")]


def test_waits_for_the_prompt() -> None:
    codec = PromptCodec()
    assert codec.decode(b"LAMP=1234") == (0, None)
    assert codec.decode(b"LAMP=1234\r") == (0, None)
    assert codec.decode(b"LAMP=1234\r\n") == (0, None)


def test_event_line_is_a_frame_without_a_prompt() -> None:
    line = b"IMEVENT=0001 03 00000000 00000000 T1 F1\r"
    consumed, frame = PromptCodec().decode(line)
    assert consumed == len(line)
    assert frame is not None
    assert frame.kind is FrameKind.EVENT
    assert frame.data == line[:-1]


def test_line_followed_by_another_line_stands_alone() -> None:
    frames = list(Deframer(PromptCodec()).feed(b"FOO=1\rPWR=01\r:"))
    assert [(f.data, f.kind) for f in frames if isinstance(f, Frame)] == [
        (b"FOO=1", FrameKind.DATA),
        (b"PWR=01", FrameKind.DATA),
    ]


def test_esc_vp_net_handshake_reply_is_a_greeting() -> None:
    reply = b"ESC/VP.net\x10\x03\x00\x00\x20\x00"
    codec = PromptCodec()
    assert codec.decode(reply[:12]) == (0, None)
    consumed, frame = codec.decode(reply + b":")
    assert consumed == 16
    assert frame is not None
    assert frame.kind is FrameKind.GREETING
    assert frame.fields["status"] == "20"
