"""Value conversion of a compiled profile, without I/O."""

from __future__ import annotations

from typing import Any

from tribune.drivers.capabilities import CompiledProfile
from tribune.profiles.schema import Profile


def binary_profile(**capabilities: Any) -> CompiledProfile:
    """A minimal binary-codec profile with the given capabilities."""
    return CompiledProfile(
        Profile.model_validate(
            {
                "id": "test-binary",
                "name": "test",
                "kind": "projector",
                "vendor": "test",
                "protocol": "test",
                "codec": "binary",
                "codec_options": {"fixed_length": 4},
                "capabilities": capabilities,
            }
        )
    )


def test_binary_text_reads_as_characters() -> None:
    compiled = binary_profile(model={"get": {"send": "00 85", "reply": "20 85 {value:4}"}})
    cap = compiled.capability("model")
    assert compiled.decode_value(cap, {"value": "4E500000"}) == "NP"


def test_binary_text_with_base_16_reads_as_hex() -> None:
    """Error bit fields: all zero must read "0000", not an empty string, and 01 not "\\x01"."""
    compiled = binary_profile(
        errors={"get": {"send": "00 88", "reply": "20 88 {value:2}"}, "base": 16}
    )
    cap = compiled.capability("errors")
    assert compiled.decode_value(cap, {"value": "0000"}) == "0000"
    assert compiled.decode_value(cap, {"value": "0100"}) == "0100"


def test_binary_int_little_endian() -> None:
    compiled = binary_profile(
        lamp_hours={"get": {"send": "03 9B", "reply": "23 9B {value:4}"}, "byteorder": "little"}
    )
    cap = compiled.capability("lamp_hours")
    assert compiled.decode_value(cap, {"value": "50460000"}) == 18000
