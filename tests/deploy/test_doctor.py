"""`tribune doctor` on a staged installation (every look at the machine through `System`), and on
this machine through the CLI: what is wrong, what to do, exit 0/1, never a traceback."""

from __future__ import annotations

import json
import os
import stat
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tribune.cli import main
from tribune.doctor import Account, Check, Doctor, System, render
from tribune.hub.publisher import Publisher

TRIBUNE, DIALOUT, INPUT, PLUGDEV = 990, 20, 105, 46
SERVICE = Account(uid=TRIBUNE, gids=frozenset({TRIBUNE, DIALOUT, INPUT, PLUGDEV}))
Usage = namedtuple("Usage", "total used free")

ROOM = """
[room]
id = "baku/room-1"
name = "doctor"

[devices.projector]
profile = "pjlink"
port = "/dev/tribune/projector"

[devices.board]
profile = "smart-board"
port = "/dev/tribune/board"

[devices.codec]
profile = "cisco-roomos"
port = "tcp://10.20.1.40:23"
{sync}
"""

SYNC = """
[sync]
broker = "mqtt://hub.example:1883"
hub_key_file = "hub.pem"
"""


def char_device(uid: int, gid: int, mode: int) -> os.stat_result:
    return os.stat_result((stat.S_IFCHR | mode, 1, 5, 1, uid, gid, 0, 0, 0, 0))


def folder(uid: int, gid: int, mode: int) -> os.stat_result:
    return os.stat_result((stat.S_IFDIR | mode, 1, 5, 1, uid, gid, 0, 0, 0, 0))


def plain_file(uid: int, gid: int, mode: int) -> os.stat_result:
    return os.stat_result((stat.S_IFREG | mode, 1, 5, 1, uid, gid, 0, 0, 0, 0))


class Machine:
    """A lectern PC as the doctor sees it; each test spoils one thing."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "root"
        opt = self.root / "opt/tribune"
        for release in ("0.1.0", "0.2.0"):
            tribune = opt / "releases" / release / "venv/bin/tribune"
            tribune.parent.mkdir(parents=True)
            tribune.write_text("#!/bin/sh\n", encoding="utf-8")
        (opt / "venv").symlink_to("releases/0.2.0/venv")
        (opt / "previous").symlink_to("releases/0.1.0/venv")
        rules = self.root / "etc/udev/rules.d/70-tribune.rules"
        rules.parent.mkdir(parents=True)
        rules.write_text("# rules\n", encoding="utf-8")
        self.config = tmp_path / "room.toml"
        self.config.write_text(ROOM.format(sync=SYNC), encoding="utf-8")
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir()
        self.hub_key = tmp_path / "hub.pem"
        self.hub_key.write_text(Publisher.load_or_create(tmp_path / "hub").public_pem())
        self.units = {"tribune.service": ("active", "enabled")}
        self.nodes: dict[str, os.stat_result] = {
            "/dev/tribune/projector": char_device(0, TRIBUNE, 0o660),
            "/dev/tribune/board": char_device(0, DIALOUT, 0o660),
            str(self.data_dir): folder(TRIBUNE, TRIBUNE, 0o750),
            str(self.hub_key): plain_file(0, 0, 0o644),
        }
        self.account: Account | None = SERVICE
        self.missing_groups: list[str] = []
        self.broker_up = True
        self.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
        self.ntp: bool | None = True
        self.free = 20 * 1024**3
        self.commands: list[list[str]] = []

    def run(self, argv: list[str]) -> tuple[int, str]:
        self.commands.append(argv)
        if argv[:1] == ["systemctl"]:
            active, enabled = self.units.get(argv[2], ("inactive", "disabled"))
            return 0, active if argv[1] == "is-active" else enabled
        return 127, ""

    def stat(self, path: str) -> os.stat_result:
        if path not in self.nodes:
            raise FileNotFoundError(path)
        return self.nodes[path]

    def connect(self, host: str, port: int, timeout: float) -> None:
        if not self.broker_up:
            raise ConnectionRefusedError(111, "Connection refused")

    def system(self) -> System:
        return System(
            root=self.root,
            run=self.run,
            systemd_running=lambda: True,
            account=lambda name: (self.account, self.missing_groups),
            stat=self.stat,
            disk_usage=lambda path: Usage(100 * 1024**3, 0, self.free),
            connect=self.connect,
            now=lambda: self.now,
            ntp_synchronized=lambda: self.ntp,
        )

    def checks(self) -> list[Check]:
        return Doctor(self.config, self.data_dir, self.system()).run()


def problems(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks if c.status == "problem"}


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_all_good(machine: Machine) -> None:
    checks = machine.checks()
    assert problems(checks) == {}
    by_name = {c.name: c for c in checks}
    assert by_name["install"].detail.endswith(
        "-> releases/0.2.0/venv; previous releases/0.1.0/venv"
    )
    assert by_name["port projector"].detail.startswith("/dev/tribune/projector: root:")
    assert by_name["port projector"].detail.endswith(" crw-rw----")
    assert by_name["port codec"].status == "skipped"
    assert by_name["broker"].detail == "mqtt://hub.example:1883 answers"
    assert by_name["hub key"].detail.endswith("only its signed commands run")
    assert render(checks).endswith("all good\n")
    assert ["systemctl", "is-active", "tribune.service"] in machine.commands


def test_a_missing_unplugged_or_unreadable_port(machine: Machine) -> None:
    del machine.nodes["/dev/tribune/board"]
    machine.nodes["/dev/tribune/projector"] = char_device(0, 0, 0o600)
    found = problems(machine.checks())
    assert found["port board"].detail == "/dev/tribune/board is missing"
    assert "tribune udev-rules" in found["port board"].fix
    assert "the service user cannot read and write it" in found["port projector"].detail
    assert "udevadm trigger" in found["port projector"].fix


def test_a_service_that_is_not_running(machine: Machine) -> None:
    machine.units["tribune.service"] = ("failed", "enabled")
    found = problems(machine.checks())
    assert found["unit tribune.service"].detail == "failed, enabled"
    assert "journalctl -u tribune -b" in found["unit tribune.service"].fix


def test_no_user_no_groups(machine: Machine) -> None:
    machine.account = None
    assert "no user 'tribune'" in problems(machine.checks())["user"].detail
    machine.account, machine.missing_groups = SERVICE, ["input"]
    assert "groups missing: input" in problems(machine.checks())["user"].detail


def test_a_bad_config_names_the_line(machine: Machine) -> None:
    machine.config.write_text(
        ROOM.format(sync="").replace('profile = "pjlink"', 'profile = "pjlink"\nbaud = 9600'),
        encoding="utf-8",
    )
    found = problems(machine.checks())
    assert found["config"].detail.startswith(f"{machine.config}:8: devices.projector.baud")
    assert "port projector" not in found  # nothing more is judged on a config that does not load


def test_a_profile_that_does_not_load(machine: Machine) -> None:
    machine.config.write_text(
        ROOM.format(sync="").replace('"smart-board"', '"smart-bored"'), encoding="utf-8"
    )
    found = problems(machine.checks())
    assert "smart-bored" in found["profile board"].detail


def test_unreachable_broker_wrong_clock_full_disk(machine: Machine) -> None:
    machine.broker_up = False
    machine.now = datetime(2000, 1, 1, tzinfo=UTC)
    machine.free = 50 * 1024**2
    found = problems(machine.checks())
    assert found["broker"].detail == "mqtt://hub.example:1883: Connection refused"
    assert found["clock"].detail == "the clock says 2000-01-01 00:00 UTC"
    assert found["disk"].detail == "50 MB free of 102400 MB"
    machine.now, machine.ntp = datetime(2026, 3, 2, tzinfo=UTC), False
    assert "not synchronised by NTP" in problems(machine.checks())["clock"].detail


def test_data_dir_not_writable(machine: Machine) -> None:
    machine.nodes[str(machine.data_dir)] = folder(0, 0, 0o755)
    found = problems(machine.checks())
    assert "cannot write it" in found["data dir"].detail
    assert found["data dir"].fix == f"chown -R tribune:tribune {machine.data_dir}"


def test_links_without_rules_and_a_broken_venv(machine: Machine) -> None:
    (machine.root / "etc/udev/rules.d/70-tribune.rules").unlink()
    (machine.root / "opt/tribune/venv").unlink()
    (machine.root / "opt/tribune/venv").symlink_to("releases/0.3.0/venv")
    found = problems(machine.checks())
    assert "70-tribune.rules is missing" in found["udev rules"].detail
    assert "has no bin/tribune" in found["install"].detail


def test_a_check_that_breaks_is_a_problem_not_a_traceback(machine: Machine) -> None:
    def broken(path: str) -> Any:
        raise RuntimeError("disk on fire")

    system = machine.system()
    system.disk_usage = broken
    checks = Doctor(machine.config, machine.data_dir, system).run()
    assert problems(checks)["data dir"].detail == "could not check: RuntimeError('disk on fire')"


def test_cli_on_this_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No install here: problems, exit 1, JSON a script can read; a config that is not TOML too.
    config = tmp_path / "room.toml"
    config.write_text("[room\n", encoding="utf-8")
    code = main(["doctor", "--config", str(config), "--data-dir", str(tmp_path), "--json"])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    names = {c["name"]: c for c in report["checks"]}
    assert names["config"]["status"] == "problem"
    assert names["install"]["status"] == "problem"
    assert main(["doctor", "--config", str(tmp_path / "none.toml")]) == 1
    assert "PROBLEM" in capsys.readouterr().out


def test_a_hub_key_not_set_missing_wrong_or_unreadable(machine: Machine) -> None:
    machine.config.write_text(
        ROOM.format(sync=SYNC.replace('hub_key_file = "hub.pem"\n', "")), encoding="utf-8"
    )
    found = problems(machine.checks())["hub key"]
    assert "hub_key_file is not set" in found.detail
    assert "tribune hub publisher-key" in found.fix
    machine.config.write_text(ROOM.format(sync=SYNC), encoding="utf-8")
    machine.nodes[str(machine.hub_key)] = plain_file(0, 0, 0o600)
    assert "the service user cannot read it" in problems(machine.checks())["hub key"].detail
    machine.hub_key.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n", encoding="utf-8")
    assert str(machine.hub_key) in problems(machine.checks())["hub key"].detail
    machine.hub_key.unlink()
    found = problems(machine.checks())["hub key"]
    assert found.detail == f"{machine.hub_key}: No such file or directory"


def test_no_sync_no_hub_key_check(machine: Machine) -> None:
    machine.config.write_text(ROOM.format(sync=""), encoding="utf-8")
    by_name = {c.name: c for c in machine.checks()}
    assert by_name["hub key"].status == "skipped"
