"""Reply patterns of the shipped profiles against answers quoted in the vendors' documents.

Each case is a frame payload as the codec hands it over (framing, checksum and terminator
removed) and the reading the profile must take from it, after its `read`/`values` maps.
"""

from __future__ import annotations

import pytest

from tribune.profiles.loader import LoadedProfile
from tribune.profiles.templates import compile_reply

# (profile, capability, payload, raw captured value, semantic reading or None for "as captured")
GET_CASES: list[tuple[str, str, bytes, str, str | None]] = [
    ("pjlink-class2", "input", b"%2INPT=3A", "3A", None),
    ("pjlink-class2", "freeze", b"%2FREZ=1", "1", "on"),
    ("pjlink-class2", "filter_hours", b"%2FILT=1234", "1234", None),
    ("epson-escvp21", "power", b"PWR=04", "04", "off"),
    ("epson-escvp21", "power", b"PWR=02", "02", "warming"),
    ("epson-escvp21", "input", b"SOURCE=A0", "A0", "hdmi2"),
    ("epson-escvp21", "lamp_hours", b"LAMP=1633 1633", "1633", None),
    # NEC: 20 81 <ID1> <ID2> 01 <DATA01>; bit 1 power on, bit 5 cooling, bit 7 processing.
    ("nec-projector", "power", bytes.fromhex("2081010F0102"), "02", "on"),
    ("nec-projector", "power", bytes.fromhex("2081010F0122"), "22", "cooling"),
    ("nec-projector", "power", bytes.fromhex("2081010F0182"), "82", "warming"),
    ("nec-projector", "power", bytes.fromhex("2081010F0110"), "10", "off"),
    # NEC lamp information request 4, hours unit: 50 46 00 00 little-endian.
    ("nec-projector", "lamp_hours", bytes.fromhex("239B010F0700020150460000"), "50460000", None),
    # Sony (VPL protocol manual): status power "power on", lamp timer 1000 h = 03 E8.
    ("sony-projector", "power", bytes.fromhex("A90102020003"), "03", "on"),
    ("sony-projector", "power", bytes.fromhex("A90102020004"), "04", "cooling"),
    ("sony-projector", "lamp_hours", bytes.fromhex("A901130203E8"), "03E8", None),
    ("sony-projector", "video_mute", bytes.fromhex("A90030020001"), "01", "on"),
    ("panasonic-projector", "power", b"001", "001", "on"),
    ("panasonic-projector", "input", b"HD1", "HD1", "hdmi1"),
    ("extron-sis", "route", b"02", "2", None),
    ("extron-sis", "volume", b"Vol55", "55", None),
    ("extron-sis", "mute", b"Amt1", "1", "on"),
    ("extron-sis", "model", b"60-1081-01", "60-1081-01", None),
    ("kramer-p3000", "route", b"~01@VID 3>1", "3", None),
    ("kramer-p3000", "model", b"~01@MODEL VS-88UT", "VS-88UT", None),
    ("smart-board", "power", b"powerstate=ready", "ready", "off"),
    ("smart-board", "volume", b"volume=55", "55", None),
    ("smart-board", "input", b"input=HDMI2", "HDMI2", "hdmi2"),
    # Samsung MDC ACK: AA FF <id> 03 'A' 11 <power>.
    ("samsung-mdc", "power", bytes.fromhex("AAFF0003411101"), "01", "on"),
    ("samsung-mdc", "input", bytes.fromhex("AAFF0003411421"), "21", "hdmi1"),
    ("lg-display", "power", b"a 01 OK01", "01", "on"),
    ("lg-display", "mute", b"e 01 OK00", "00", "on"),
    ("lg-display", "input", b"b 01 OK90", "90", "hdmi1"),
    ("cisco-roomos", "call", b"*s SystemUnit State NumberOfActiveCalls: 0", "0", "idle"),
    ("cisco-roomos", "mic_mute", b"*s Audio Microphones Mute: On", "On", "on"),
]

# (profile, payload, expected error type)
ERROR_CASES: list[tuple[str, bytes, str]] = [
    ("pjlink-class2", b"%2FREZ=ERR3", "busy"),
    ("pjlink-class2", b"%1POWR=ERR2", "refused"),
    ("epson-escvp21", b"ERR", "busy"),
    ("nec-projector", bytes.fromhex("A201010F02020D"), "busy"),
    ("nec-projector", bytes.fromhex("A003010F020000"), "refused"),
    ("sony-projector", bytes.fromhex("A9010A030000"), "busy"),
    ("sony-projector", bytes.fromhex("A90101030000"), "refused"),
    ("panasonic-projector", b"ER401", "busy"),
    ("extron-sis", b"E22", "busy"),
    ("extron-sis", b"E01", "refused"),
    ("kramer-p3000", b"~01@VID ERR 003", "refused"),
    ("kramer-p3000", b"~01@ERR 002", "refused"),
    ("smart-board", b"invalid cmd: setvolume=-50", "refused"),
    ("samsung-mdc", bytes.fromhex("AAFF00034E1201"), "refused"),
    ("lg-display", b"a 01 NG01", "refused"),
    ("cisco-roomos", b"*r DialResult (status=Error):", "refused"),
]

# Successful answers that must not be taken for errors.
NOT_ERRORS: list[tuple[str, bytes]] = [
    ("epson-escvp21", b"ERR=00"),
    ("extron-sis", b"Out2 In1 All"),
    ("kramer-p3000", b"~01@VID 1>2 OK"),
    ("cisco-roomos", b"*r DialResult (status=OK):"),
    ("samsung-mdc", bytes.fromhex("AAFF0003411101")),
]


def _reading(loaded: LoadedProfile, capability: str, raw: str) -> str:
    cap = loaded.profile.capabilities[capability]
    if cap.read and raw in cap.read:
        return cap.read[raw]
    for semantic, wire in (cap.values or {}).items():
        if wire == raw:
            return semantic
    return raw


@pytest.mark.parametrize(("profile_id", "capability", "payload", "raw", "reading"), GET_CASES)
def test_documented_answer_is_read(
    shipped: dict[str, LoadedProfile],
    profile_id: str,
    capability: str,
    payload: bytes,
    raw: str,
    reading: str | None,
) -> None:
    loaded = shipped[profile_id]
    cap = loaded.profile.capabilities[capability]
    assert cap.get is not None
    assert cap.get.reply is not None
    pattern = compile_reply(cap.get.reply, binary=loaded.profile.codec == "binary")
    groups = pattern.match(payload)
    assert groups is not None, f"{cap.get.reply!r} does not match {payload!r}"
    assert groups["value"] == raw
    assert _reading(loaded, capability, raw) == (reading if reading is not None else raw)


def _error_type(loaded: LoadedProfile, payload: bytes) -> str | None:
    binary = loaded.profile.codec == "binary"
    for error in loaded.profile.errors:
        if compile_reply(error.match, binary=binary).match(payload) is not None:
            return error.type
    return None


@pytest.mark.parametrize(("profile_id", "payload", "kind"), ERROR_CASES)
def test_documented_error_is_classified(
    shipped: dict[str, LoadedProfile], profile_id: str, payload: bytes, kind: str
) -> None:
    assert _error_type(shipped[profile_id], payload) == kind


@pytest.mark.parametrize(("profile_id", "payload"), NOT_ERRORS)
def test_success_is_not_an_error(
    shipped: dict[str, LoadedProfile], profile_id: str, payload: bytes
) -> None:
    assert _error_type(shipped[profile_id], payload) is None
