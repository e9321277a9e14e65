"""PjlinkCodec against the PJLink specifications (JBMIA class 1 v1.04+, class 2 v2.00+)."""

from __future__ import annotations

import pytest

from tribune.drivers.codecs import Frame, FrameKind, PjlinkCodec, pjlink_digest, pjlink_error
from tribune.errors import (
    AuthenticationError,
    DeviceBusyError,
    DeviceRefusedError,
    FrameError,
)


def decode_one(wire: bytes) -> Frame:
    consumed, frame = PjlinkCodec().decode(wire)
    assert consumed == len(wire)
    assert frame is not None
    return frame


def test_encode_adds_cr() -> None:
    assert PjlinkCodec().encode(b"%1POWR 1") == b"%1POWR 1\r"


def test_greeting_without_authentication() -> None:
    frame = decode_one(b"PJLINK 0\r")
    assert frame.kind is FrameKind.GREETING
    assert frame.fields == {"auth": "0"}


def test_greeting_with_authentication_and_the_specification_digest() -> None:
    frame = decode_one(b"PJLINK 1 498e4a67\r")
    assert frame.kind is FrameKind.GREETING
    assert frame.fields == {"auth": "1", "random": "498e4a67"}
    # The specification's worked example (password "JBMIAProjectorLink").
    digest = pjlink_digest(frame.fields["random"], "JBMIAProjectorLink")
    assert digest == "5d8409bc1c3fa39749434aa3a5c38682"


def test_auth_error() -> None:
    frame = decode_one(b"PJLINK ERRA\r")
    assert frame.kind is FrameKind.AUTH_ERROR
    error = pjlink_error(frame)
    assert isinstance(error, AuthenticationError)
    assert error.code == "ERRA"


def test_reply_fields() -> None:
    frame = decode_one(b"%1POWR=OK\r")
    assert frame == Frame(
        data=b"%1POWR=OK",
        raw=b"%1POWR=OK\r",
        fields={"class": "1", "command": "POWR", "params": "OK"},
    )
    assert pjlink_error(frame) is None


def test_reply_with_spaces_and_empty_params() -> None:
    assert decode_one(b"%1LAMP=12345 1 200 0\r").fields["params"] == "12345 1 200 0"
    assert decode_one(b"%1INFO=\r").fields["params"] == ""


def test_command_is_case_insensitive() -> None:
    assert decode_one(b"%1powr=1\r").fields["command"] == "POWR"


def test_linkup_notification_is_an_event() -> None:
    frame = decode_one(b"%2LKUP=00:11:22:33:44:55\r")
    assert frame.kind is FrameKind.EVENT
    assert frame.fields["params"] == "00:11:22:33:44:55"


def test_status_notification_is_data() -> None:
    assert decode_one(b"%2POWR=1\r").kind is FrameKind.DATA


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        ("ERR1", DeviceRefusedError),
        ("ERR2", DeviceRefusedError),
        ("ERR3", DeviceBusyError),
        ("ERR4", DeviceRefusedError),
        ("ERRA", AuthenticationError),
    ],
)
def test_error_replies(code: str, error_class: type[Exception]) -> None:
    error = pjlink_error(decode_one(f"%1INPT={code}\r".encode()))
    assert isinstance(error, error_class)
    assert error.code == code


@pytest.mark.parametrize(
    ("request_", "reply", "matches"),
    [
        (b"%1POWR 1", b"%1POWR=OK\r", True),
        (b"%1POWR ?", b"%1POWR=1\r", True),
        (b"%1POWR ?", b"%2POWR=1\r", False),
        (b"%1INPT ?", b"%1POWR=1\r", False),
        (b"5d8409bc1c3fa39749434aa3a5c38682%1POWR ?", b"%1POWR=0\r", True),
        (b"%2SRCH", b"%2ACKN=00:11:22:33:44:55\r", False),
        (b"%1POWR ?", b"PJLINK 0\r", False),
    ],
)
def test_reply_matches(request_: bytes, reply: bytes, matches: bool) -> None:
    assert PjlinkCodec().reply_matches(request_, decode_one(reply)) is matches


def test_reply_matches_cannot_tell_for_a_non_pjlink_request() -> None:
    assert PjlinkCodec().reply_matches(b"hello", decode_one(b"%1POWR=OK\r")) is None


@pytest.mark.parametrize("line", [b"HELLO\r", b"PJLINK 2\r", b"PJLINK 1\r", b"%1POW=1\r"])
def test_malformed_lines_are_frame_errors(line: bytes) -> None:
    with pytest.raises(FrameError) as error:
        PjlinkCodec().decode(line)
    assert error.value.consumed == len(line)


def test_stray_lf_is_skipped() -> None:
    codec = PjlinkCodec()
    assert codec.decode(b"\n%1POWR=OK\r") == (1, None)
