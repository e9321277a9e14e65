"""Command and reply templates of a profile, compiled for the profile's codec.

Text codecs: `send` is a format string (`"%1POWR {value}"`), `reply` a regular expression matched
at the start of the reply text. Binary codec: both are hex byte templates, space separated:
`AA`, `??` (any byte, replies only), `*` (any bytes to the end, replies only) and `{name}` or
`{name:N}` (N bytes, big-endian; default 1; up to 99) or `{name:*}` (any number of bytes,
replies only). A text reply pattern that could backtrack exponentially is refused
(`tribune.profiles.backtracking`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from tribune.profiles.backtracking import check_backtracking

_FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)(?::([1-9][0-9]?|\*))?\}")
_HEX = re.compile(r"^[0-9A-Fa-f]{2}$")


@dataclass(frozen=True, slots=True)
class SendTemplate:
    """How to build a request payload from parameters."""

    text: str
    binary: bool

    @property
    def fields(self) -> frozenset[str]:
        """Names of the parameters the template takes."""
        return frozenset(m.group(1) for m in _FIELD.finditer(self.text))

    def render(
        self, params: Mapping[str, str | int], *, byteorder: Literal["big", "little"] = "big"
    ) -> bytes:
        """The payload for `params`; a missing parameter raises `KeyError`.

        Hex strings are bytes as written; numbers are laid out in `byteorder`.
        """
        if not self.binary:
            return _FIELD.sub(lambda m: str(params[m.group(1)]), self.text).encode("latin-1")
        out = bytearray()
        for token in self.text.split():
            field = _FIELD.fullmatch(token)
            if field is None:
                out.append(int(token, 16))
                continue
            if field.group(2) == "*":
                raise ValueError(f"{token}: variable width is for replies only")
            width = int(field.group(2) or 1)
            value = params[field.group(1)]
            if isinstance(value, str):
                out += int(value, 16).to_bytes(width, "big")
            else:
                out += value.to_bytes(width, byteorder)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class ReplyPattern:
    """A compiled reply pattern; `match` returns the captured groups or None."""

    pattern: re.Pattern[bytes]
    binary: bool

    def match(self, data: bytes) -> dict[str, str] | None:
        """Captured groups of a matching reply: text as is, binary bytes as upper-case hex."""
        found = self.pattern.match(data)
        if found is None:
            return None
        groups: dict[str, str] = {}
        for name, raw in found.groupdict().items():
            if raw is None:
                continue
            groups[name] = raw.hex().upper() if self.binary else raw.decode("latin-1")
        return groups


def compile_send(text: str, *, binary: bool) -> SendTemplate:
    """Check and compile a `send` template."""
    if binary:
        for token in text.split():
            if not (_HEX.match(token) or _FIELD.fullmatch(token)):
                raise ValueError(f"bad hex token {token!r} (want `AA` or `{{name}}`)")
    else:
        stripped = _FIELD.sub("", text)
        if "{" in stripped or "}" in stripped:
            raise ValueError("braces must enclose a lower_case parameter name, e.g. {value}")
    return SendTemplate(text, binary)


def compile_reply(text: str, *, binary: bool) -> ReplyPattern:
    """Check and compile a `reply` pattern; exact match for binary, prefix regex for text."""
    if not binary:
        try:
            pattern = re.compile(text.encode("latin-1"), re.DOTALL)
        except re.error as exc:
            raise ValueError(f"bad regular expression: {exc}") from exc
        check_backtracking(pattern.pattern, pattern.flags)
        return ReplyPattern(pattern, binary=False)
    parts: list[bytes] = []
    for token in text.split():
        field = _FIELD.fullmatch(token)
        if _HEX.match(token):
            parts.append(re.escape(bytes([int(token, 16)])))
        elif token == "??":  # noqa: S105 - a wildcard, not a password
            parts.append(b".")
        elif token == "*":  # noqa: S105
            parts.append(b".*")
        elif field is not None:
            name = field.group(1).encode()
            if field.group(2) == "*":
                parts.append(b"(?P<" + name + b">.*)")
            else:
                width = field.group(2) or "1"
                parts.append(b"(?P<" + name + b">.{" + width.encode() + b"})")
        else:
            raise ValueError(f"bad hex token {token!r} (want `AA`, `??`, `*` or `{{name}}`)")
    return ReplyPattern(re.compile(b"".join(parts) + b"\\Z", re.DOTALL), binary=True)


def check_template(text: str, *, binary: bool, reply: bool) -> None:
    """Raise `ValueError` if a template does not compile."""
    if reply:
        compile_reply(text, binary=binary)
    else:
        compile_send(text, binary=binary)
