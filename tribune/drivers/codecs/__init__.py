"""Codecs: pure bytes <-> frames for each protocol family, built by name from a profile."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tribune.drivers.codecs.base import Codec, Deframer, Frame, FrameKind
from tribune.drivers.codecs.binary import BinaryCodec
from tribune.drivers.codecs.line import LineCodec
from tribune.drivers.codecs.pjlink import PJLINK_ERRORS, PjlinkCodec, pjlink_digest, pjlink_error
from tribune.drivers.codecs.prompt import PromptCodec
from tribune.drivers.codecs.usb import UsbControlCodec
from tribune.errors import ConfigError

__all__ = [
    "CODECS",
    "PJLINK_ERRORS",
    "BinaryCodec",
    "Codec",
    "Deframer",
    "Frame",
    "FrameKind",
    "LineCodec",
    "PjlinkCodec",
    "PromptCodec",
    "UsbControlCodec",
    "make_codec",
    "pjlink_digest",
    "pjlink_error",
]


def _as_bytes(name: str, value: Any) -> bytes:
    """Bytes from a profile value: text (YAML `"\\r"` is a CR), a byte value, or a list of them."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigError(f"codec option {name!r}: {value!r} is not byte text") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, list | tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value
    ):
        return bytes(value)
    raise ConfigError(f"codec option {name!r}: expected text, a byte value or a list of them")


def _as_bytes_list(name: str, value: Any) -> tuple[bytes, ...]:
    if isinstance(value, list | tuple):
        return tuple(_as_bytes(name, item) for item in value)
    return (_as_bytes(name, value),)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"codec option {name!r}: expected a non-negative integer, got {value!r}")


def _as_optional_int(name: str, value: Any) -> int | None:
    return None if value is None else _as_int(name, value)


def _as_str(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(f"codec option {name!r}: expected text, got {value!r}")


Converter = Callable[[str, Any], Any]

# Each codec's constructor and the options a profile may set, with how to read each one.
CODECS: dict[str, tuple[Callable[..., Codec], dict[str, Converter]]] = {
    "line": (
        LineCodec,
        {
            "terminator": _as_bytes,
            "accept": _as_bytes_list,
            "prefix": _as_bytes,
            "max_length": _as_int,
        },
    ),
    "prompt": (
        PromptCodec,
        {
            "terminator": _as_bytes,
            "prompt": _as_bytes,
            "events": _as_bytes_list,
            "max_length": _as_int,
        },
    ),
    "binary": (
        BinaryCodec,
        {
            "checksum": _as_str,
            "checksum_from": _as_int,
            "suffix": _as_bytes,
            "sync": _as_bytes,
            "length_index": _as_optional_int,
            "length_overhead": _as_int,
            "fixed_length": _as_optional_int,
            "max_length": _as_int,
        },
    ),
    "pjlink": (PjlinkCodec, {"max_length": _as_int}),
    "usb": (UsbControlCodec, {"max_length": _as_int}),
}


def make_codec(name: str, options: Mapping[str, Any]) -> Codec:
    """Build codec `name` from profile options; unknown or ill-typed options raise ConfigError."""
    if name not in CODECS:
        raise ConfigError(f"unknown codec {name!r} (known: {', '.join(CODECS)})")
    factory, converters = CODECS[name]
    unknown = sorted(set(options) - set(converters))
    if unknown:
        allowed = ", ".join(converters)
        raise ConfigError(f"codec {name!r}: unknown option(s) {', '.join(unknown)} ({allowed})")
    return factory(**{key: converters[key](key, value) for key, value in options.items()})
