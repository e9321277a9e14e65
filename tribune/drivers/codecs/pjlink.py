"""PJLink (JBMIA) class 1 and 2: CR-terminated text, `PJLINK` greeting, MD5 authentication."""

from __future__ import annotations

import hashlib
import re

from tribune.drivers.codecs.base import Codec, Frame, FrameKind
from tribune.drivers.codecs.line import LineCodec
from tribune.errors import (
    AuthenticationError,
    DeviceBusyError,
    DeviceError,
    DeviceRefusedError,
    FrameError,
)

# `%` + class digit + 4-character command + `=` (replies) or ` ` (requests) + parameters.
_REPLY = re.compile(rb"%([1-9])([0-9A-Za-z]{4})=(.*)", re.DOTALL)
_REQUEST = re.compile(rb"%([1-9])([0-9A-Za-z]{4})(?:[ =\r]|$)")

# Sent by the projector on its own, never as the answer to a TCP request: LKUP when its network
# link comes up, ACKN in answer to a broadcast search (SRCH), possibly from many projectors.
NOTIFICATION_ONLY = frozenset({"LKUP", "ACKN"})

PJLINK_ERRORS: dict[str, tuple[type[DeviceError], str]] = {
    "ERR1": (DeviceRefusedError, "undefined command"),
    "ERR2": (DeviceRefusedError, "out of parameter"),
    # The projector cannot do it right now (warming up, cooling down, switching): retry later.
    "ERR3": (DeviceBusyError, "unavailable time"),
    "ERR4": (DeviceRefusedError, "projector/display failure"),
    "ERRA": (AuthenticationError, "authorization error"),
}


def pjlink_digest(random: str, password: str) -> str:
    """The auth digest: MD5 hex of the greeting's random number followed by the password."""
    return hashlib.md5((random + password).encode(), usedforsecurity=False).hexdigest()


def pjlink_error(frame: Frame) -> DeviceError | None:
    """The typed error a reply carries (`%1POWR=ERR3`, `PJLINK ERRA`), or None for a success."""
    auth_error = frame.kind is FrameKind.AUTH_ERROR
    code = "ERRA" if auth_error else frame.fields.get("params", "").upper()
    if code not in PJLINK_ERRORS:
        return None
    error_class, meaning = PJLINK_ERRORS[code]
    command = frame.fields.get("command", "PJLINK")
    return error_class(f"{command}: {code} ({meaning})", code=code)


class PjlinkCodec(Codec):
    """Frames PJLink lines and tells greetings, auth errors, replies and notifications apart."""

    name = "pjlink"

    def __init__(self, *, max_length: int = 512) -> None:
        # CR ends every PJLink line; a stray LF from a sloppy device is skipped as an empty line.
        self._lines = LineCodec(terminator=b"\r", accept=(b"\r", b"\n"), max_length=max_length)

    def encode(self, payload: bytes) -> bytes:
        """Return the command (e.g. `%1POWR 1`, or digest + command) with its CR."""
        return self._lines.encode(payload)

    def decode(self, buf: bytes) -> tuple[int, Frame | None]:
        """Decode one line into a greeting, an auth error, a reply or a notification."""
        consumed, line = self._lines.decode(buf)
        if line is None:
            return consumed, None
        data = line.data.strip(b" ")
        if data[:7].upper() == b"PJLINK ":
            return consumed, self._greeting(data, line.raw, consumed)
        match = _REPLY.fullmatch(data)
        if match is None:
            raise FrameError(f"not a PJLink line: {data[:40]!r}", consumed)
        fields = {
            "class": match[1].decode("latin-1"),
            "command": match[2].decode("latin-1").upper(),
            "params": match[3].decode("latin-1"),
        }
        kind = FrameKind.EVENT if fields["command"] in NOTIFICATION_ONLY else FrameKind.DATA
        return consumed, Frame(data=data, raw=line.raw, kind=kind, fields=fields)

    @staticmethod
    def _greeting(data: bytes, raw: bytes, consumed: int) -> Frame:
        words = data.decode("latin-1").split(" ")
        if words[1:] == ["0"]:
            fields = {"auth": "0"}
        elif len(words) == 3 and words[1] == "1" and words[2]:
            fields = {"auth": "1", "random": words[2]}
        elif words[1:] == ["ERRA"]:
            return Frame(data=data, raw=raw, kind=FrameKind.AUTH_ERROR, fields={"error": "ERRA"})
        else:
            raise FrameError(f"bad PJLink greeting: {data[:40]!r}", consumed)
        return Frame(data=data, raw=raw, kind=FrameKind.GREETING, fields=fields)

    def reply_matches(self, request: bytes, frame: Frame) -> bool | None:
        """True iff `frame` replies with the same class and command (`%1POWR 1` -> `%1POWR=OK`)."""
        # The request may carry the 32-character digest in front of the first command.
        match = _REQUEST.search(request)
        if match is None:
            return None
        if frame.kind is not FrameKind.DATA:
            return False
        return (
            frame.fields.get("class") == match[1].decode("latin-1")
            and frame.fields.get("command") == match[2].decode("latin-1").upper()
        )
