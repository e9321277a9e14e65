"""Realistic mistakes in a profile fail with `FILE:LINE: field: ...` pointing at the mistake."""

from __future__ import annotations

import re
import shutil
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


def test_misspelt_field_names_the_field_and_its_line(tmp_path: Path) -> None:
    path = _copy(tmp_path, "projector", "epson-escvp21")
    line = _break(path, "  reply_timeout: 3.0", "  reply_timeot: 3.0")
    where, at, message = _where(_load_error(path))
    assert where == str(path)
    assert at == line
    assert message.startswith("timing.reply_timeot: unknown field")
    assert "did you mean 'reply_timeout'" in message


def test_misspelt_command_field_inside_a_capability(tmp_path: Path) -> None:
    path = _copy(tmp_path, "display", "samsung-mdc")
    line = _break(
        path,
        "get: {send: 'AA 12 {id} 00', reply:",
        "get: {send: 'AA 12 {id} 00', replay:",
    )
    error = _load_error(path)
    assert isinstance(error, ProfileError)
    _, at, message = _where(error)
    assert at == line
    assert message.startswith("capabilities.volume.get.replay: unknown field")
    assert "'reply'" in message


def test_bad_regular_expression(tmp_path: Path) -> None:
    path = _copy(tmp_path, "projector", "epson-escvp21")
    line = _break(path, "'PWR=(?P<value>0[0-9])'", "'PWR=(?P<value>0[0-9]'")
    _, at, message = _where(_load_error(path))
    assert at == line
    assert message.startswith("capabilities.power.get.reply: bad regular expression")


def test_bad_hex_token_in_a_binary_template(tmp_path: Path) -> None:
    path = _copy(tmp_path, "projector", "sony-projector")
    line = _break(path, "send: 'A9 01 13 01 00 00'", "send: 'A9 01 13 01 00 0G'")
    _, at, message = _where(_load_error(path))
    assert at == line
    assert message.startswith("capabilities.lamp_hours.get.send: bad hex token '0G'")


def test_poll_naming_an_unknown_capability(tmp_path: Path) -> None:
    path = _copy(tmp_path, "display", "samsung-mdc")
    _break(path, "- {get: volume, every: 30}", "- {get: volumn, every: 30}")
    where, _, message = _where(_load_error(path))
    assert where == str(path)
    assert "poll[2]" in message
    assert "'volumn' is not a readable capability" in message


def test_wrong_value_type(tmp_path: Path) -> None:
    path = _copy(tmp_path, "switcher", "kramer-p3000")
    line = _break(path, "{baudrate: 115200,", "{baudrate: fast,")
    _, at, message = _where(_load_error(path))
    assert at == line
    assert message.startswith("link.serial.baudrate:")
    assert "integer" in message


def test_wrong_poll_interval_type(tmp_path: Path) -> None:
    path = _copy(tmp_path, "board", "smart-board")
    line = _break(path, "- {get: volume, every: 30}", "- {get: volume, every: often}")
    _, at, message = _where(_load_error(path))
    assert at == line
    assert message.startswith("poll.2.every:")


def test_misspelt_enum_value(tmp_path: Path) -> None:
    path = _copy(tmp_path, "display", "lg-display")
    line = _break(path, "kind: display", "kind: dispaly")
    _, at, message = _where(_load_error(path))
    assert at == line
    assert message.startswith("kind:")
    assert "'display'" in message


def test_id_must_match_the_file_name(tmp_path: Path) -> None:
    path = _copy(tmp_path, "switcher", "extron-sis")
    line = _break(path, "id: extron-sis", "id: extron-sis2")
    _, at, message = _where(_load_error(path))
    assert at == line
    assert message.startswith("id:")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _copy(tmp_path, "codec", "cisco-roomos")
    line = _break(path, "  gap: 0.05", "  gap: [0.05")
    where, at, _ = _where(_load_error(path))
    assert where == str(path)
    assert line <= at <= line + 2
