"""Docs that are generated must match what generates them."""

from __future__ import annotations

from pathlib import Path

from tribune.profiles.table import BEGIN, END, supported_devices_table

REPO = Path(__file__).resolve().parent.parent


def test_readme_supported_devices_table_is_current() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    assert readme[start:end].strip() == supported_devices_table().strip(), (
        "README's supported-devices table is stale: run `tribune profile table --write README.md`"
    )


def test_readme_quick_start_is_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make demo", "make test"]
