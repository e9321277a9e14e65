"""make_codec builds codecs from profile options as YAML gives them (text, ints, lists)."""

from __future__ import annotations

from typing import Any

import pytest

from tribune.drivers.codecs import (
    BinaryCodec,
    LineCodec,
    PjlinkCodec,
    PromptCodec,
    make_codec,
)
from tribune.errors import ConfigError


def test_each_codec_by_name() -> None:
    assert isinstance(make_codec("line", {}), LineCodec)
    assert isinstance(make_codec("prompt", {}), PromptCodec)
    assert isinstance(make_codec("pjlink", {}), PjlinkCodec)
    assert isinstance(make_codec("binary", {"fixed_length": 8}), BinaryCodec)


def test_text_options_become_bytes() -> None:
    codec = make_codec("line", {"terminator": "\r", "accept": ["x"], "max_length": 64})
    assert isinstance(codec, LineCodec)
    assert codec.encode(b"ka 01 01") == b"ka 01 01\r"
    assert codec.accept == (b"x",)
    assert codec.max_length == 64


def test_byte_values_and_lists_become_bytes() -> None:
    nec = make_codec(
        "binary",
        {
            "checksum": "sum8",
            "length_index": 4,
            "length_overhead": 6,
            "sync": [0x20, 0x21, 0x22, 0x23, 0xA0, 0xA1, 0xA2, 0xA3],
        },
    )
    assert nec.encode(bytes.fromhex("0200000000")) == bytes.fromhex("020000000002")
    sony = make_codec(
        "binary",
        {"checksum": "or", "checksum_from": 1, "suffix": 0x9A, "sync": 0xA9, "fixed_length": 8},
    )
    assert sony.encode(bytes.fromhex("A9172E000000")) == bytes.fromhex("A9172E0000003F9A")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("telnet", {}),
        ("line", {"baud": 9600}),
        ("line", {"terminator": 3.5}),
        ("line", {"terminator": "\u0259"}),
        ("line", {"max_length": -1}),
        ("line", {"max_length": True}),
        ("binary", {"fixed_length": 8, "sync": [256]}),
        ("binary", {"fixed_length": 8, "checksum": 1}),
        ("binary", {"checksum": "crc16", "fixed_length": 8}),
        ("binary", {}),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        make_codec(name, options)
