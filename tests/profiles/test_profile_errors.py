"""Realistic mistakes in a profile fail with `FILE:LINE: field: ...` pointing at the mistake."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tribune.errors import ConfigError, ProfileError
from tribune.profiles.loader import ProfileLoader, shipped_profiles_dir

SHIPPED = shipped_profiles_dir()


def _copy(tmp_path: Path, kind: str, profile_id: str) -> Path:
    target = tmp_path / kind / f"{profile_id}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHIPPED / kind / f"{profile_id}.yaml", target)
    return target


def _break(path: Path, old: str, new: str) -> int:
    """Replace the one occurrence of `old`; return the 1-based line where it was."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return line


def _load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        ProfileLoader([path.parent.parent]).load_file(path)
    return caught.value


def _where(error: ConfigError) -> tuple[str, int, str]:
    found = re.match(r"^(.+?):(\d+): (.*)$", str(error), re.DOTALL)
    assert found is not None, f"error does not start with FILE:LINE: {error}"
    return found.group(1), int(found.group(2)), found.group(3)


@dataclass(frozen=True)
class Mistake:
    """One edit to a shipped profile, and the error that must point at the edited line."""

    name: str
    kind: str
    profile: str
    old: str
    new: str
    starts: str  # the error's message, after FILE:LINE:, starts with this
    mentions: tuple[str, ...] = ()  # and mentions these


MISTAKES = [
    Mistake(
        "misspelt_field_names_the_field_and_its_line",
        "projector",
        "epson-escvp21",
        "  reply_timeout: 3.0",
        "  reply_timeot: 3.0",
        "timing.reply_timeot: unknown field",
        ("did you mean 'reply_timeout'",),
    ),
    Mistake(
        "misspelt_command_field_inside_a_capability",
        "display",
        "samsung-mdc",
        "get: {send: 'AA 12 {id} 00', reply:",
        "get: {send: 'AA 12 {id} 00', replay:",
        "capabilities.volume.get.replay: unknown field",
        ("'reply'",),
    ),
    Mistake(
        "bad_regular_expression",
        "projector",
        "epson-escvp21",
        "'PWR=(?P<value>0[0-9])'",
        "'PWR=(?P<value>0[0-9]'",
        "capabilities.power.get.reply: bad regular expression",
    ),
    Mistake(
        "bad_hex_token_in_a_binary_template",
        "projector",
        "sony-projector",
        "send: 'A9 01 13 01 00 00'",
        "send: 'A9 01 13 01 00 0G'",
        "capabilities.lamp_hours.get.send: bad hex token '0G'",
    ),
    Mistake(
        "wrong_value_type",
        "switcher",
        "kramer-p3000",
        "{baudrate: 115200,",
        "{baudrate: fast,",
        "link.serial.baudrate:",
        ("integer",),
    ),
    Mistake(
        "wrong_poll_interval_type",
        "board",
        "smart-board",
        "- {get: volume, every: 30}",
        "- {get: volume, every: often}",
        "poll.2.every:",
    ),
    Mistake(
        "misspelt_enum_value",
        "display",
        "lg-display",
        "kind: display",
        "kind: dispaly",
        "kind:",
        ("'display'",),
    ),
    Mistake(
        "id_must_match_the_file_name",
        "switcher",
        "extron-sis",
        "id: extron-sis",
        "id: extron-sis2",
        "id:",
    ),
]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_mistake_is_named_at_its_line(tmp_path: Path, mistake: Mistake) -> None:
    path = _copy(tmp_path, mistake.kind, mistake.profile)
    line = _break(path, mistake.old, mistake.new)
    error = _load_error(path)
    assert isinstance(error, ProfileError)
    where, at, message = _where(error)
    assert where == str(path)
    assert at == line
    assert message.startswith(mistake.starts)
    for mention in mistake.mentions:
        assert mention in message


def test_poll_naming_an_unknown_capability(tmp_path: Path) -> None:
    path = _copy(tmp_path, "display", "samsung-mdc")
    _break(path, "- {get: volume, every: 30}", "- {get: volumn, every: 30}")
    where, _, message = _where(_load_error(path))
    assert where == str(path)
    assert "poll[2]" in message
    assert "'volumn' is not a readable capability" in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _copy(tmp_path, "codec", "cisco-roomos")
    line = _break(path, "  gap: 0.05", "  gap: [0.05")
    where, at, _ = _where(_load_error(path))
    assert where == str(path)
    assert line <= at <= line + 2
