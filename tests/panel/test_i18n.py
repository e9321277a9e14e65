"""The translation files: the same keys in az, en and ru, every key used, every used key there,
no empty text, placeholders alike, and Azerbaijani written with its own letters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

PANEL = Path(__file__).resolve().parents[2] / "tribune" / "api" / "panel"
LANGUAGES = ("az", "en", "ru")
# String literals in the JS that look like keys but are not translation keys.
NOT_KEYS = {"device.failed", "tribune.lang", "tribune.technician", "help.request"}
KEY = re.compile(r"""["']([a-z][a-z_]*(?:\.[a-z_]+)+)["']""")


def words(lang: str) -> dict[str, str]:
    data = json.loads((PANEL / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def used_keys() -> set[str]:
    used: set[str] = set()
    html = (PANEL / "index.html").read_text(encoding="utf-8")
    used |= set(re.findall(r'data-i18n(?:-aria)?="([^"]+)"', html))
    for script in sorted((PANEL / "js").glob("*.js")):
        used |= set(KEY.findall(script.read_text(encoding="utf-8"))) - NOT_KEYS
    return used


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_used_key_is_translated(lang: str) -> None:
    missing = sorted(used_keys() - set(words(lang)))
    assert not missing, f"{lang}.json lacks {missing}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_is_used(lang: str) -> None:
    unused = sorted(set(words(lang)) - used_keys())
    assert not unused, f"{lang}.json has keys nothing uses: {unused}"


def test_languages_have_the_same_keys_and_placeholders() -> None:
    az = words("az")
    for lang in ("en", "ru"):
        other = words(lang)
        assert set(other) == set(az), set(other) ^ set(az)
        for key, text in az.items():
            assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", other[key])), (
                lang,
                key,
            )
    for lang in LANGUAGES:
        assert all(text.strip() for text in words(lang).values()), lang


def test_azerbaijani_uses_its_letters() -> None:
    az = words("az")
    text = " ".join(az.values())
    for letter in "əğıİöşüç":
        assert letter in text, letter
    # Common stand-ins for ə and ı that a keyboard without them produces.
    assert not re.search(r"\b(Derse|Sesi|Elaqe|yoxdur\?)\b", text)
    assert az["help.button"] == "Texniki dəstək çağır"
    assert az["state.warming_left"] == "Qızır… {n} san"
