"""`tribune udev-rules`: golden output for every kind of port, sockets from by-path names,
--node, the rules already written and a fake `udevadm` (an executable on PATH: argument lists,
no shell), and the CLI's exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tribune.cli import main
from tribune.config import parse_config
from tribune.udev import (
    Socket,
    Udevadm,
    existing_rules,
    generate,
    socket_from_by_path,
    socket_from_udev,
)

GOLDEN = Path(__file__).parent / "golden" / "70-tribune.rules"

PCI = "pci-0000:00:14.0-usb-0"

ROOM = f"""
[room]
id = "baku/room-1"
name = "udev"

[devices.projector]      # a by-path name: read from the name
profile = "epson-escvp21"
port = "/dev/serial/by-path/{PCI}:2:1.0-port0"

[devices.board]          # a CDC-ACM board: by-path without -portN
profile = "smart-board"
port = "/dev/serial/by-path/{PCI}:3:1.0"

[devices.switcher]       # by-id: udevadm says where it is plugged in now
profile = "extron-sis"
port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"

[devices.display]        # our own link, placed with --node
profile = "samsung-mdc"
port = "/dev/tribune/display"

[devices.second-projector]   # our own link, nobody knows where yet
profile = "nec-projector"
port = "/dev/tribune/second-projector"

[devices.lg]             # the PC's own COM port
profile = "lg-display"
port = "/dev/ttyS0"

[devices.codec]
profile = "cisco-roomos"
port = "tcp://10.20.1.40:23"

[devices.screen]
profile = "usb-hid-relay"
port = "usb://16c0:05df?path=1-1.2"
options = {{ channel = "1" }}

[buttons.keypads.lectern]
vid_pid = "1a2c:0e24"
keys = {{ KEY_F1 = "desired:projector.power=on" }}

[buttons.keypads.spare]
path = "/dev/input/by-id/usb-05a4_9881-event-kbd"
keys = {{ KEY_F2 = "desired:projector.power=off" }}
"""

UDEV = {
    "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0": {
        "DEVNAME": "/dev/ttyUSB3",
        "ID_PATH": f"{PCI}:4:1.0",
        "DEVLINKS": (
            "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0 "
            f"/dev/serial/by-path/{PCI}:4:1.0-port0"
        ),
    },
    "/dev/ttyUSB1": {
        "DEVNAME": "/dev/ttyUSB1",
        "ID_PATH": f"{PCI}:1.4:1.0",
        "DEVLINKS": f"/dev/serial/by-path/{PCI}:1.4:1.0-port0",
    },
    "/dev/input/by-id/usb-05a4_9881-event-kbd": {
        "DEVNAME": "/dev/input/event7",
        "ID_VENDOR_ID": "05a4",
        "ID_MODEL_ID": "9881",
    },
}

FAKE_UDEVADM = """#!{python}
import json, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
known = json.load(open({table!r}))
name = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--name="))
if sys.argv[1:3] != ["info", "--query=property"] or name not in known:
    sys.stderr.write("Unknown device\\n")
    sys.exit(1)
for key, value in known[name].items():
    print(f"{{key}}={{value}}")
"""


@pytest.fixture
def udevadm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `udevadm` first on PATH; returns the file its calls are logged to."""
    folder = tmp_path / "bin"
    folder.mkdir()
    table, log = tmp_path / "udev.json", tmp_path / "udevadm.log"
    table.write_text(json.dumps(UDEV), encoding="utf-8")
    script = folder / "udevadm"
    script.write_text(
        FAKE_UDEVADM.format(python=sys.executable, log=str(log), table=str(table)),
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "room.toml"
    path.write_text(ROOM, encoding="utf-8")
    return path


def test_socket_from_a_by_path_name() -> None:
    assert socket_from_by_path(f"/dev/serial/by-path/{PCI}:2:1.0-port0") == Socket(
        f"{PCI}:2:1.0", "0"
    )
    assert socket_from_by_path(f"/dev/serial/by-path/{PCI}:3:1.0") == Socket(f"{PCI}:3:1.0")
    assert socket_from_by_path("/dev/serial/by-id/usb-x-if00-port0") is None
    assert socket_from_by_path('/dev/serial/by-path/evil"name') is None


def test_socket_from_udev_properties() -> None:
    props = UDEV["/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"]
    assert socket_from_udev(props) == Socket(f"{PCI}:4:1.0", "0")
    assert socket_from_udev({"ID_PATH": f"{PCI}:5:1.0"}) == Socket(f"{PCI}:5:1.0")
    assert socket_from_udev({"DEVNAME": "/dev/ttyS0"}) is None


def test_golden(udevadm: Path, tmp_path: Path) -> None:
    config = parse_config(ROOM, "room.toml")
    rules = generate(
        config, config_name="/etc/tribune/room.toml", nodes={"display": "/dev/ttyUSB1"}
    )
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(rules.text, encoding="utf-8")
    assert rules.text == GOLDEN.read_text(encoding="utf-8")
    assert rules.unplaced == ["second-projector"]
    assert sorted(rules.links) == ["board", "display", "projector", "switcher"]
    # udevadm was asked with argument lists, never a shell line, and never about by-path names.
    calls = [json.loads(line) for line in udevadm.read_text().splitlines()]
    assert ["info", "--query=property", "--name=/dev/ttyUSB1"] in calls
    assert all(not call[-1].startswith("--name=/dev/serial/by-path/") for call in calls)


def test_regenerating_keeps_the_links_already_written(udevadm: Path) -> None:
    config = parse_config(ROOM, "room.toml")
    first = generate(config, config_name="room.toml", nodes={"display": "/dev/ttyUSB1"})
    # Later, the display's adapter is unplugged and nobody passes --node: its rule stays.
    again = generate(config, config_name="room.toml", existing=first.text)
    assert again.links["display"] == Socket(f"{PCI}:1.4:1.0", "0")
    assert "# display: /dev/tribune/display (kept from the rules file)" in again.text
    assert existing_rules(again.text) == existing_rules(first.text)


def test_a_by_id_port_follows_the_adapter_to_its_new_socket(udevadm: Path) -> None:
    config = parse_config(ROOM, "room.toml")
    old = 'SUBSYSTEM=="tty", ENV{ID_PATH}=="pci-0000:00:14.0-usb-0:9:1.0", '
    old += 'ATTRS{port_number}=="0", SYMLINK+="tribune/switcher", GROUP="tribune", MODE="0660"'
    rules = generate(config, config_name="room.toml", existing=old)
    assert rules.links["switcher"] == Socket(f"{PCI}:4:1.0", "0")  # where udevadm sees it now


def test_without_udevadm_by_path_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no udevadm at all
    config = parse_config(ROOM, "room.toml")
    rules = generate(config, config_name="room.toml")
    assert sorted(rules.links) == ["board", "projector"]
    assert sorted(rules.unplaced) == ["display", "second-projector", "switcher"]


def test_a_fake_udevadm_through_the_seam() -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "ID_PATH=pci-0000:00:1d.0-usb-0:1:1.0\n", "")

    udev = Udevadm(program="sh", run=run)  # any program that exists: `run` stands in for it
    assert udev.properties("/dev/ttyUSB0") == {"ID_PATH": "pci-0000:00:1d.0-usb-0:1:1.0"}
    assert calls[0][1:] == ["info", "--query=property", "--name=/dev/ttyUSB0"]


def test_cli_writes_and_says_what_is_missing(
    udevadm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path)
    target = tmp_path / "rules.d" / "70-tribune.rules"
    args = ["udev-rules", "--config", str(config), "--write", str(target)]
    assert main([*args, "--node", "display=/dev/ttyUSB1"]) == 1  # second-projector not placed
    out, err = capsys.readouterr()
    assert "/dev/tribune/projector" in out
    assert "udevadm control --reload" in out
    assert "second-projector: not placed" in err
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    # Placed later: all done, and the display keeps its socket without --node.
    assert main([*args, "--node", "second-projector=/dev/ttyUSB1"]) == 0
    text = target.read_text(encoding="utf-8")
    assert 'SYMLINK+="tribune/second-projector"' in text
    assert 'SYMLINK+="tribune/display"' in text


def test_cli_prints_without_write(
    udevadm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["udev-rules", "--config", str(config_file(tmp_path))])
    assert capsys.readouterr().out.startswith("# Generated by `tribune udev-rules")


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("display", "want DEVICE=NODE"),
        ("nothere=/dev/ttyUSB0", "no device 'nothere'"),
    ],
)
def test_cli_refuses_a_bad_node(
    node: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path)
    assert main(["udev-rules", "--config", str(config), "--node", node]) == 2
    assert message in capsys.readouterr().err


def test_cli_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "room.toml"
    bad.write_text("[room]\nid = 'x'\n", encoding="utf-8")
    assert main(["udev-rules", "--config", str(bad)]) == 2
    assert "room.toml" in capsys.readouterr().err
