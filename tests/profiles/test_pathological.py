"""Pathological profiles are refused at load, quickly, with file, line and a reason.

A profile can come from a technician's upload or a hub push, so the loader is an edge: an alias
bomb, deep nesting, enormous values and reply patterns that backtrack for ever must stop there,
not in the service's memory or in a device thread matching a reply.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tribune.errors import ConfigError
from tribune.profiles.backtracking import check_backtracking
from tribune.profiles.loader import MAX_PROFILE_BYTES, ProfileLoader, shipped_profiles_dir

SHIPPED = shipped_profiles_dir()
PJLINK = (SHIPPED / "projector" / "pjlink.yaml").read_text(encoding="utf-8")
TEXT_REPLY = "reply: '%1POWR=(?P<value>[0-3])$'"
assert TEXT_REPLY in PJLINK


def _refused(tmp_path: Path, text: str) -> ConfigError:
    """Load `text` as projector/pjlink.yaml; it must be refused within a second."""
    path = tmp_path / "projector" / "pjlink.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        ProfileLoader([tmp_path]).load_file(path)
    assert time.monotonic() - started < 1.0
    error = caught.value
    assert error.path == str(path), error
    assert error.line is not None, error
    assert str(error).startswith(f"{path}:{error.line}: ")
    return error


def _laughs(levels: int) -> str:
    """The billion-laughs bomb: each level is nine aliases of the one before."""
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        aliases = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{aliases}]")
    return "\n".join(lines) + "\n"


BOMBS = {
    # 9**9 = 387 million strings from ten lines (the service would be killed for memory).
    "billion laughs": (PJLINK + _laughs(9), "more than 10000 values"),
    "alias inside its own anchor": (PJLINK + "models: &m [a, *m]\n", "inside its own anchor"),
    "deep list": (PJLINK + "models: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    "deep mapping": (PJLINK + "codec_options: " + "{a: " * 3000 + "1" + "}" * 3000, "nested"),
    "alias to a deep anchor": (
        PJLINK + "x: &deep [[[[[[[[[[[[1]]]]]]]]]]]]\ncodec_options: {a: [[[[*deep]]]]}\n",
        "alias *deep nests deeper",
    ),
    "huge list": (PJLINK.replace("models: [", "models: [" + "m, " * 12_000), "more than 10000"),
    "huge string": (PJLINK.replace("name: ", "name: " + "x" * 10_000, 1), "(at most 4096)"),
    "huge number": (PJLINK + "timing: {gap: 1" + "0" * 5000 + "}\n", "characters"),
    "number beyond 64 bits": (PJLINK + "timing: {retries: " + "9" * 40 + "}\n", "too large"),
    "control character": (PJLINK.replace("vendor:", "vendor: \x07\nx:", 1), "U+0007"),
}


@pytest.mark.parametrize(("text", "reason"), BOMBS.values(), ids=BOMBS.keys())
def test_hostile_yaml_is_refused_quickly_with_a_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    assert reason in str(_refused(tmp_path, text))


def test_a_file_too_large_is_refused_unread_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "projector" / "pjlink.yaml"
    path.parent.mkdir()
    path.write_text(PJLINK + "#" * MAX_PROFILE_BYTES + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: file is .* at most"):
        ProfileLoader([tmp_path]).load_file(path)


CATASTROPHIC = [
    r"%1POWR=(?P<value>(\d+)+)$",  # the textbook one: (a+)+$
    r"%1POWR=(?P<value>(\d|\d\d)+)$",  # alternation whose branches overlap, repeated
    r"%1POWR=(?P<value>(?:\s*\w)*)$",
    r"%1POWR=(?P<value>(?:\d{1,3}\.?){1,4})$",
]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_reply_pattern_that_backtracks_exponentially_is_refused(
    tmp_path: Path, pattern: str
) -> None:
    text = PJLINK.replace(TEXT_REPLY, f"reply: '{pattern}'")
    line = PJLINK[: PJLINK.index(TEXT_REPLY)].count("\n") + 1
    error = _refused(tmp_path, text)
    assert error.line == line
    assert "capabilities.power.get.reply" in error.reason
    assert "exponentially" in error.reason


def test_the_same_goes_for_error_patterns_and_identify_expect(tmp_path: Path) -> None:
    assert (
        "errors.1.match"
        in _refused(
            tmp_path, PJLINK.replace("match: '%1\\w{4}=ERR1'", "match: '%1(\\w+)*=ERR1'")
        ).reason
    )
    error = _refused(tmp_path, PJLINK.replace("expect: '^[12]$'", "expect: '^([12]+)+$'"))
    assert "identify.0.expect" in error.reason


def test_a_pattern_the_guard_refuses_really_would_hang() -> None:
    """Why: 22 characters already take about as long as 2**22 tries; a reply line may be 2048."""
    pattern = re.compile(rb"(\d+)+$")
    started = time.monotonic()
    assert pattern.match(b"1" * 22 + b"x") is None
    assert time.monotonic() - started > 0.05
    with pytest.raises(ValueError, match="exponentially"):
        check_backtracking(pattern.pattern)


SAFE = [
    r"(?P<value>[1-6][1-9A-Z](?: [1-6][1-9A-Z])*)$",  # a fixed-width repeated part
    r"(?:Ver\d*\*?)?(?P<value>\d+\.\d+(?:\.\d+)?)",  # optional parts are not repeats
    r"~\d+@MODEL (?P<value>\S.*?)\s*$",  # polynomial at worst: bounded by the frame length
    r"(?:x\d|y\w)+",  # each branch starts with its own character
    r"(?i)(?:on|off)+",
]


@pytest.mark.parametrize("pattern", SAFE)
def test_ordinary_patterns_pass(pattern: str) -> None:
    check_backtracking(pattern.encode())


def test_every_shipped_profile_passes_the_limits() -> None:
    loaded = ProfileLoader([SHIPPED]).load_all()
    assert len(loaded) >= 10


def test_polynomial_shapes_the_guard_allows_stay_fast_on_a_whole_frame() -> None:
    """Extron's `0*(?P<value>\\d+)$` is quadratic on zeros that end badly: on the longest line a
    line codec passes by default (2048 bytes) that is still a few hundredths of a second."""
    pattern = re.compile(rb"0*(?P<value>\d+)$", re.DOTALL)
    check_backtracking(pattern.pattern)
    started = time.monotonic()
    assert pattern.match(b"0" * 2047 + b"x") is None
    assert time.monotonic() - started < 0.5
