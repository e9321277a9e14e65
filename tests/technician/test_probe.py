"""`tribune profile probe` and the store commands, against simulators on real ptys and sockets."""

from __future__ import annotations

import json
from pathlib import Path

from tests.technician.conftest import PROFILES, tribune
from tribune.profiles.loader import ProfileLoader
from tribune.sim import start_simulator

FAST = ("--timeout", "0.4")


async def test_the_epson_profile_matches_the_epson_projector_on_a_pty(tmp_path: Path) -> None:
    async with start_simulator("epson-escvp21", pty=True, speed=50) as sim:
        run = await tribune(
            "profile",
            "probe",
            str(PROFILES / "projector" / "epson-escvp21.yaml"),
            "--port",
            sim.path,
            "--data-dir",
            str(tmp_path),
            *FAST,
        )
    assert run.code == 0, run.out + run.err
    assert "verdict   the device matches epson-escvp21" in run.out
    assert "lamp_hours" in run.out
    assert "serial    X4K9" in run.out


async def test_the_nec_profile_on_the_epson_port_does_not_match(tmp_path: Path) -> None:
    async with start_simulator("epson-escvp21", pty=True, speed=50) as sim:
        run = await tribune(
            "profile", "probe", "nec-projector", "--port", sim.path, "--json",
            "--data-dir", str(tmp_path), *FAST,
        )  # fmt: skip
    assert run.code == 4, run.out + run.err
    report = json.loads(run.out)
    assert report["matches"] is False
    assert report["problems"][0].startswith("identify[0] send '00 85 00 00 01 04': no reply")


async def test_kramer_profile_against_the_extron_switcher_says_what_did_not_match(
    tmp_path: Path,
) -> None:
    async with start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=50) as sim:
        port = f"tcp://127.0.0.1:{sim.port}"
        wrong = await tribune(
            "profile", "probe", "kramer-p3000", "--port", port, "--data-dir", str(tmp_path), *FAST
        )
        right = await tribune(
            "profile", "probe", "extron-sis", "--port", port, "--json",
            "--data-dir", str(tmp_path), *FAST,
        )  # fmt: skip
    assert wrong.code == 4
    assert "does NOT match kramer-p3000" in wrong.out
    assert "identify[0] get model: no reply within 0.4 s" in wrong.out
    assert right.code == 0, right.out + right.err
    report = json.loads(right.out)
    assert report["model"].startswith("60-")
    assert report["identify"][0]["matched"] is True
    assert "route[1]" in report["readings"]


async def test_an_expect_that_fails_is_a_mismatch(tmp_path: Path) -> None:
    """A profile whose `expect` the device's model does not match: answered, but exit 4."""
    text = (PROFILES / "switcher" / "extron-sis.yaml").read_text(encoding="utf-8")
    folder = tmp_path / "mine"
    folder.mkdir()
    wrong = folder / "extron-sis.yaml"
    wrong.write_text(text.replace("expect: '^60-'", "expect: '^99-'"), encoding="utf-8")
    assert ProfileLoader().load_file(wrong).profile.identify[0].expect == "^99-"
    async with start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=50) as sim:
        run = await tribune(
            "profile", "probe", str(wrong), "--port", f"tcp://127.0.0.1:{sim.port}",
            "--data-dir", str(tmp_path), *FAST,
        )  # fmt: skip
    assert run.code == 4
    assert "does not match '^99-'" in run.out


async def test_a_wrong_pjlink_password_exits_3(tmp_path: Path) -> None:
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=50, password="secret") as sim:
        run = await tribune(
            "profile", "probe", "pjlink", "--port", f"tcp://127.0.0.1:{sim.port}",
            "--password", "wrong", "--data-dir", str(tmp_path), *FAST,
        )  # fmt: skip
        good = await tribune(
            "profile", "probe", "pjlink", "--port", f"tcp://127.0.0.1:{sim.port}",
            "--password", "secret", "--data-dir", str(tmp_path), *FAST,
        )  # fmt: skip
    assert run.code == 3, run.out + run.err
    assert "authentication failed" in run.err
    assert good.code == 0, good.out + good.err


async def test_nothing_on_the_port_exits_4(tmp_path: Path) -> None:
    run = await tribune(
        "profile", "probe", "extron-sis", "--port", str(tmp_path / "ttyUSB9"),
        "--data-dir", str(tmp_path), *FAST,
    )  # fmt: skip
    assert run.code == 4
    assert "tribune:" in run.err


async def test_install_history_rollback_from_the_command_line(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    source = tmp_path / "new" / "extron-sis.yaml"
    source.parent.mkdir()
    text = (PROFILES / "switcher" / "extron-sis.yaml").read_text(encoding="utf-8")
    source.write_text(text.replace('version: "1"', 'version: "2"'), encoding="utf-8")

    installed = await tribune("profile", "install", str(source), "--by", "aysel", "--json", *data)
    assert installed.code == 0, installed.err
    record = json.loads(installed.out)
    assert (record["id"], record["installed_by"]) == ("extron-sis", "aysel")

    history = await tribune("profile", "history", "extron-sis", "--json", *data)
    assert [e["current"] for e in json.loads(history.out)] == [True]

    shown = await tribune("profile", "history", "extron-sis", *data)
    assert shown.out.startswith("* ")
    assert "install" in shown.out
    assert "aysel" in shown.out

    back = await tribune("profile", "rollback", "extron-sis", *data)
    assert back.code == 0
    assert "the shipped one is in use" in back.out

    again = await tribune("profile", "rollback", "extron-sis", "--json", *data)
    assert again.code == 2
    assert json.loads(again.out)["ok"] is False


async def test_a_broken_profile_is_not_installed(tmp_path: Path) -> None:
    broken = tmp_path / "extron-sis.yaml"
    text = (PROFILES / "switcher" / "extron-sis.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("codec: line", "codek: line"), encoding="utf-8")
    run = await tribune("profile", "install", str(broken), "--data-dir", str(tmp_path / "d"))
    assert run.code == 2
    assert f"{broken}:" in run.err
    assert "codek: unknown field (did you mean 'codec'?)" in run.err
    assert not (tmp_path / "d" / "profiles" / "extron-sis").exists()
