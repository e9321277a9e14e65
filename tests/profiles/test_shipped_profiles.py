"""Every shipped profile loads, validates, cites its document and only uses parameters it has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tribune.drivers.codecs import make_codec
from tribune.profiles.loader import LoadedProfile, ProfileLoader, shipped_profiles_dir
from tribune.profiles.schema import HEX_CODECS, POWER_STATES, Profile, ValueType
from tribune.profiles.templates import compile_send

PROFILES_DIR = shipped_profiles_dir()
PROFILE_FILES = sorted(PROFILES_DIR.glob("*/*.yaml"))

_FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)(?::[1-8])?\}")

# The profiles this release promises; a missing one is a packaging mistake.
EXPECTED_IDS = {
    "pjlink",
    "pjlink-class2",
    "epson-escvp21",
    "nec-projector",
    "sony-projector",
    "panasonic-projector",
    "extron-sis",
    "kramer-p3000",
    "smart-board",
    "samsung-mdc",
    "lg-display",
    "cisco-roomos",
    "usb-hid-relay",
}

# Polling a real device faster than this floods slow serial parsers (Epson, NEC, Panasonic).
MIN_POLL_SECONDS = 5.0


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def test_the_promised_profiles_are_shipped() -> None:
    assert {p.stem for p in PROFILE_FILES} >= EXPECTED_IDS


@pytest.mark.parametrize("path", PROFILE_FILES, ids=_ids(PROFILE_FILES))
def test_profile_loads_and_validates(path: Path) -> None:
    loaded = ProfileLoader([PROFILES_DIR]).load_file(path)
    assert loaded.profile.id == path.stem
    assert loaded.profile.kind.value == path.parent.name


@pytest.mark.parametrize("path", PROFILE_FILES, ids=_ids(PROFILE_FILES))
def test_profile_cites_its_protocol_document(path: Path) -> None:
    loaded = ProfileLoader([PROFILES_DIR]).load_file(path)
    assert loaded.profile.protocol.strip()
    header = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert len(header) >= 3, "a profile starts with a comment describing the device"
    assert any(line.startswith("# Protocol:") for line in header), "header names its document"


@pytest.mark.parametrize("path", PROFILE_FILES, ids=_ids(PROFILE_FILES))
def test_codec_options_build_a_codec(path: Path) -> None:
    profile = ProfileLoader([PROFILES_DIR]).load_file(path).profile
    codec = make_codec(profile.codec, profile.codec_options)
    assert codec.name == profile.codec


def test_ids_are_unique_and_match_file_names(shipped: dict[str, LoadedProfile]) -> None:
    stems = [p.stem for p in PROFILE_FILES]
    assert len(stems) == len(set(stems))
    assert len(shipped) == len(PROFILE_FILES)
    for profile_id, loaded in shipped.items():
        assert loaded.path.stem == profile_id


def _allowed_fields(profile: Profile, extra: set[str]) -> set[str]:
    return set(profile.options) | extra


def _send_fields(text: str) -> set[str]:
    return set(_FIELD.findall(text))


@pytest.mark.parametrize("path", PROFILE_FILES, ids=_ids(PROFILE_FILES))
def test_templates_only_use_known_parameters(path: Path) -> None:
    profile = ProfileLoader([PROFILES_DIR]).load_file(path).profile
    for name, cap in profile.capabilities.items():
        route = profile.value_type(name) is ValueType.ROUTE
        if cap.get is not None:
            allowed = _allowed_fields(profile, {"output"} if route else set())
            assert _send_fields(cap.get.send) <= allowed, f"{name}.get"
        if cap.set is not None:
            allowed = _allowed_fields(profile, {"input", "output"} if route else {"value"})
            assert _send_fields(cap.set.send) <= allowed, f"{name}.set"
        for value, command in (cap.set_each or {}).items():
            assert _send_fields(command.send) <= _allowed_fields(profile, set()), f"{name}.{value}"
    for name, action in profile.actions.items():
        assert _send_fields(action.send) <= _allowed_fields(profile, set(action.params)), name
    for i, ident in enumerate(profile.identify):
        if ident.send is not None:
            assert _send_fields(ident.send) <= _allowed_fields(profile, set()), f"identify[{i}]"


@pytest.mark.parametrize("path", PROFILE_FILES, ids=_ids(PROFILE_FILES))
def test_templates_render_with_option_defaults(path: Path) -> None:
    profile = ProfileLoader([PROFILES_DIR]).load_file(path).profile
    binary = profile.codec in HEX_CODECS
    params: dict[str, str | int] = {
        name: spec.default or "1" for name, spec in profile.options.items()
    }
    params |= {"value": "01" if binary else "1", "input": "1", "output": "1"}
    for name, action in profile.actions.items():
        payload = compile_send(action.send, binary=binary).render(
            params | dict.fromkeys(action.params, "1")
        )
        assert payload, name
    for name, cap in profile.capabilities.items():
        for command in (cap.get, cap.set, *(cap.set_each or {}).values()):
            if command is not None:
                assert compile_send(command.send, binary=binary).render(params), name


@pytest.mark.parametrize("path", PROFILE_FILES, ids=_ids(PROFILE_FILES))
def test_value_maps_use_the_capability_vocabulary(path: Path) -> None:
    profile = ProfileLoader([PROFILES_DIR]).load_file(path).profile
    for name, cap in profile.capabilities.items():
        kind = profile.value_type(name)
        semantic = set((cap.read or {}).values()) | set(cap.values or {})
        semantic |= set(cap.set_each or {})
        if kind is ValueType.POWER:
            assert semantic <= set(POWER_STATES), name
        elif kind is ValueType.BOOL:
            assert semantic <= {"on", "off"}, name
        if kind is ValueType.LEVEL and cap.set is not None:
            assert cap.range is not None, f"{name}: a settable level needs its device range"


@pytest.mark.parametrize("path", PROFILE_FILES, ids=_ids(PROFILE_FILES))
def test_poll_plan_does_not_flood_the_device(path: Path) -> None:
    profile = ProfileLoader([PROFILES_DIR]).load_file(path).profile
    assert profile.poll, "every profile polls something"
    assert all(entry.every >= MIN_POLL_SECONDS for entry in profile.poll)
    # At most about one request a second on average, whatever the number of entries.
    assert sum(1 / entry.every for entry in profile.poll) <= 1.0


@pytest.mark.parametrize("path", PROFILE_FILES, ids=_ids(PROFILE_FILES))
def test_every_profile_can_identify_the_device(path: Path) -> None:
    profile = ProfileLoader([PROFILES_DIR]).load_file(path).profile
    assert profile.identify
    assert profile.errors, "every protocol has some way of saying no"


def test_switchers_route_with_input_and_output(shipped: dict[str, LoadedProfile]) -> None:
    for profile_id in ("extron-sis", "kramer-p3000"):
        route = shipped[profile_id].profile.capabilities["route"]
        assert route.outputs
        assert route.get is not None
        assert route.set is not None
        assert _send_fields(route.set.send) == {"input", "output"}
        assert _send_fields(route.get.send) == {"output"}
        assert "(?P<value>" in (route.get.reply or "")


def test_extends_inherits_and_overrides(shipped: dict[str, LoadedProfile]) -> None:
    base = shipped["pjlink"].profile
    class2 = shipped["pjlink-class2"].profile
    assert class2.extends == "pjlink"
    assert class2.kind == base.kind
    assert class2.codec == "pjlink"
    # Inherited untouched from pjlink.yaml.
    assert class2.capabilities["power"] == base.capabilities["power"]
    assert class2.capabilities["lamp_hours"] == base.capabilities["lamp_hours"]
    # Overridden: class 2 input terms, merged value names.
    assert class2.capabilities["input"].get is not None
    assert class2.capabilities["input"].get.send == "%2INPT ?"
    assert set(base.capabilities["input"].values or {}) <= set(
        class2.capabilities["input"].values or {}
    )
    # Added by class 2.
    assert {"freeze", "filter_hours", "serial", "firmware"} <= set(class2.capabilities)
    assert {"speaker_volume_up", "mic_volume_down", "input_name"} <= set(class2.actions)


def test_extends_reads_the_parent_file_not_a_copy(tmp_path: Path) -> None:
    """A change to the parent shows in the child: extends is resolved at load time."""
    for profile_id in ("pjlink", "pjlink-class2"):
        source = next(p for p in PROFILE_FILES if p.stem == profile_id)
        target = tmp_path / "projector" / source.name
        target.parent.mkdir(exist_ok=True)
        target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    parent = tmp_path / "projector" / "pjlink.yaml"
    parent.write_text(
        parent.read_text(encoding="utf-8").replace("warmup: 60", "warmup: 75"), encoding="utf-8"
    )
    child = ProfileLoader([tmp_path]).load("pjlink-class2").profile
    assert child.timing.warmup == 75
