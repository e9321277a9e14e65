"""`tribune profile flash|rollback|history` as a technician types them, against a live uvicorn
serving a room of simulators: every exit code end to end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import TOKENS, serving
from tests.room.test_crash_restart import free_port
from tests.technician.conftest import tribune
from tests.technician.flashing import FlashRoom, epson_v2, flash_room, nec


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[FlashRoom, str]]:
    async with flash_room(tmp_path) as fr, serving(fr.app) as port:
        yield fr, f"http://127.0.0.1:{port}"


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


async def test_flash_rollback_and_history_through_the_service(
    live: tuple[FlashRoom, str], tmp_path: Path
) -> None:
    fr, url = live
    good = write(tmp_path, "epson-v2.yaml", epson_v2())
    service = ("--url", url, "--data-dir", str(tmp_path / "cli"))

    flashed = await tribune(
        "profile", "flash", good, "--device", "projector", "--by", "rashad", *service,
        env={"TRIBUNE_TECHNICIAN_TOKEN": TOKENS.technician},
    )  # fmt: skip

    assert flashed.code == 0, flashed.out + flashed.err
    assert "projector: flashed epson-escvp21 version 2" in flashed.out
    assert "before: epson-escvp21 version 1" in flashed.out
    assert "probe:  matches" in flashed.out
    assert fr.room.runtimes["projector"].profile.version == "2"
    [entry] = fr.profiles.history("epson-escvp21")
    assert entry.record.installed_by == "rashad (token:technician)"

    history = await tribune(
        "profile", "history", "--device", "projector", "--token", TOKENS.technician, *service
    )
    assert history.code == 0, history.out + history.err
    assert "install" in history.out
    assert "v2 " in history.out
    assert "by rashad (token:technician)" in history.out

    back = await tribune(
        "profile", "rollback", "--device", "projector", "--token", TOKENS.technician, "--json",
        *service,
    )  # fmt: skip
    assert back.code == 0, back.out + back.err
    result = json.loads(back.out)
    assert (result["ok"], result["profile"], result["version"]) == (True, "epson-escvp21", "1")
    assert fr.room.runtimes["projector"].profile.version == "1"
    # The offline history reads the same store the service wrote.
    offline = await tribune(
        "profile", "history", "epson-escvp21", "--data-dir", str(fr.profiles.data_dir)
    )
    assert offline.code == 0, offline.err
    assert offline.out.splitlines()[0].startswith("* ")
    assert "rollback" in offline.out.splitlines()[0]


async def test_flash_exit_codes(live: tuple[FlashRoom, str], tmp_path: Path) -> None:
    fr, url = live
    service = ("--url", url, "--data-dir", str(tmp_path / "cli"), "--token", TOKENS.technician)
    wrong = write(tmp_path, "nec-projector.yaml", nec())
    broken = write(tmp_path, "broken.yaml", epson_v2().replace("poll:\n", "pol:\n"))
    line = 1 + epson_v2().split("poll:\n")[0].count("\n")

    invalid = await tribune("profile", "flash", broken, "--device", "projector", *service)
    assert invalid.code == 2, invalid.out + invalid.err
    assert f"{broken}:{line}: pol: unknown field (did you mean 'poll'?)" in invalid.err

    refused = await tribune(
        "profile", "flash", wrong, "--device", "projector", "--timeout", "0.5", *service
    )
    assert refused.code == 4, refused.out + refused.err
    assert "projector does not match nec-projector" in refused.err
    assert "  - identify[0] send '00 85 00 00 01 04': no reply" in refused.err
    assert "--force" in refused.err
    assert fr.room.runtimes["projector"].profile.id == "epson-escvp21"
    assert fr.profiles.installed() == []

    bad_token = await tribune(
        "profile", "flash", wrong, "--device", "projector", *service[:-1], "not-the-token"
    )
    assert bad_token.code == 3, bad_token.out + bad_token.err
    assert "authentication failed" in bad_token.err
    no_token = await tribune(
        "profile", "flash", wrong, "--device", "projector", "--url", url,
        "--data-dir", str(tmp_path / "cli"),
    )  # fmt: skip
    assert no_token.code == 3, no_token.out + no_token.err

    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = await tribune(
        "profile", "flash", wrong, "--device", "projector", *service[2:], "--url", closed
    )
    assert unreachable.code == 4, unreachable.out + unreachable.err
    assert "is `tribune serve` running there?" in unreachable.err

    unknown = await tribune("profile", "flash", wrong, "--device", "beamer", *service)
    assert unknown.code == 2, unknown.out + unknown.err

    forced = await tribune(
        "profile", "flash", wrong, "--device", "projector", "--force", "--timeout", "0.5",
        "--json", *service,
    )  # fmt: skip
    assert forced.code == 0, forced.out + forced.err
    result = json.loads(forced.out)
    assert (result["forced"], result["profile"]) == (True, "nec-projector")
    assert fr.room.runtimes["projector"].profile.id == "nec-projector"
    assert fr.profiles.installed() == ["nec-projector"]
