"""Room config: the shipped examples load; mistakes name file, line and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tribune.config import load_config, parse_config
from tribune.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_load(path: Path) -> None:
    config = load_config(path)
    assert config.room.id.startswith("baku/")
    assert {"class-start", "class-end"} <= set(config.scenes)
    for scene in config.scenes.values():
        assert scene.label.az
        assert scene.label.en
        assert scene.label.ru


def test_defaults() -> None:
    config = parse_config(
        '[room]\nid = "ganja/room-1"\nname = "Gəncə"\n\n'
        '[devices.projector]\nprofile = "pjlink"\nport = "tcp://10.0.0.2:4352"\n',
        "room.toml",
    )
    assert config.room.language == "az"
    assert config.room.timezone == "Asia/Baku"
    assert config.api.port == 8080


MISTAKES = [
    # (description, text, expected line, expected words)
    (
        "misspelt key in a device",
        '[room]\nid = "baku/room-1"\nname = "x"\n\n[devices.projector]\nprofil = "pjlink"\n'
        'port = "/dev/ttyUSB0"\n',
        6,
        ["devices.projector.profil", "did you mean 'profile'"],
    ),
    (
        "bad room id",
        '[room]\nid = "Baku Room 1"\nname = "x"\n\n[devices.p]\nprofile = "pjlink"\nport = "x"\n',
        2,
        ["room.id"],
    ),
    (
        "scene names a device that does not exist",
        '[room]\nid = "baku/room-1"\nname = "x"\n\n[devices.projector]\nprofile = "pjlink"\n'
        'port = "x"\n\n[scenes.class-start]\nlabel = { az = "a", en = "b", ru = "c" }\n'
        'desired = { projecter = { power = "on" } }\n',
        11,
        ["scenes.class-start.desired", "no device 'projecter'"],
    ),
    (
        "label without Russian",
        '[room]\nid = "baku/room-1"\nname = "x"\n\n[devices.projector]\nprofile = "pjlink"\n'
        'port = "x"\n\n[scenes.class-end]\nlabel = { az = "a", en = "b" }\n',
        10,
        ["scenes.class-end.label.ru", "required"],
    ),
    (
        "schedule time that is not a time",
        '[room]\nid = "baku/room-1"\nname = "x"\n\n[devices.projector]\nprofile = "pjlink"\n'
        'port = "x"\n\n[scenes.class-end]\nlabel = { az = "a", en = "b", ru = "c" }\n\n'
        '[[schedule]]\nid = "off"\nwhen = "weekdays 25:00"\nscene = "class-end"\n',
        14,
        ["schedule.0.when"],
    ),
    (
        "unknown time zone",
        '[room]\nid = "baku/room-1"\nname = "x"\ntimezone = "Asia/Bakuu"\n\n[devices.p]\n'
        'profile = "pjlink"\nport = "x"\n',
        4,
        ["room.timezone", "unknown time zone"],
    ),
    ("TOML syntax", '[room]\nid = "baku/room-1\n', 2, ["TOML syntax"]),
]


@pytest.mark.parametrize(
    ("text", "line", "words"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_mistakes_name_file_line_and_key(text: str, line: int, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "room.toml")
    message = str(caught.value)
    assert message.startswith(f"room.toml:{line}: "), message
    for word in words:
        assert word in message, message


def test_config_check_command(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "tribune", "config", "check", str(EXAMPLES[0])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    bad = tmp_path / "room.toml"
    bad.write_text('[room]\nid = "baku/room-1"\nnme = "x"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "tribune", "config", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout.startswith(f"{bad}:3: room.nme: unknown key")


def test_config_check_catches_values_the_profiles_refuse(tmp_path: Path) -> None:
    text = (EXAMPLES[-1]).read_text(encoding="utf-8")
    assert 'power = "on", input = "hdmi1"' in text
    typo = tmp_path / "room.toml"
    typo.write_text(text.replace('power = "on", input = "hdmi1"', 'power = "of", input = "hdmi1"'))
    result = subprocess.run(
        [sys.executable, "-m", "tribune", "config", "check", str(typo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "scenes.class-start.desired.projector.power" in result.stdout
    assert "'of' is not one of" in result.stdout
    assert result.stdout.startswith(f"{typo}:")
