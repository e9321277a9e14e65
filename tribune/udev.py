"""`tribune udev-rules`: a stable `/dev/tribune/<device>` link for each serial device of a room.

Keyed on the USB socket the adapter is plugged into (udev's `ID_PATH`, the name under
`/dev/serial/by-path/`), not on its serial number: cheap adapters share serial numbers, so
`/dev/serial/by-id/` cannot tell two of them apart, and an adapter moved to another socket must
not silently become another device. The link's group is the service's, so it can open it.

Where a device's socket comes from, in this order:
  1. `--node DEVICE=NODE` (the technician's word: "the projector is the adapter that is NODE now"),
  2. a `/dev/serial/by-path/...` port in room.toml (read from the name, no udevadm needed),
  3. the rule for its link already in the rules file being rewritten (so regenerating keeps it),
  4. `udevadm info --query=property --name=PORT`, for a port that exists now (by-id, ttyUSB0,
     an existing /dev/tribune link): its ID_PATH, and the port number from its by-path link.
A device none of these places gets a comment saying how to place it (exit 1).

Keypads ([buttons]) and USB relay boards (usb:// ports) are covered by the static rules
60-tribune-input.rules and 61-tribune-usbrelay.rules; this file adds access lines for models
those do not list.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tribune.config import RoomConfig

RULES_PATH = "/etc/udev/rules.d/70-tribune.rules"
SERVICE_GROUP = "tribune"
BY_PATH = "/dev/serial/by-path/"
LINK_DIR = "/dev/tribune/"
RELAY_IDS = {("16c0", "05df")}  # what 61-tribune-usbrelay.rules covers
KEYPAD_IDS = {("05a4", "9881")}  # what 60-tribune-input.rules lists as shipped

_SAFE = re.compile(r"^[A-Za-z0-9:._+-]+$")  # an ID_PATH or a link name: nothing udev globs on
_RULE = re.compile(
    r'ENV\{ID_PATH\}=="(?P<id_path>[^"]+)"(?:, ATTRS\{port_number\}=="(?P<port>\d+)")?'
    r'.*SYMLINK\+="tribune/(?P<link>[^"]+)"'
)
_ONBOARD = re.compile(r"^/dev/tty(S|AMA)\d+$")  # the PC's own COM ports: stable names already
_USB_ID = re.compile(r"^usb://([0-9a-fA-F]{4}):([0-9a-fA-F]{4})")


@dataclass(frozen=True)
class Socket:
    """Where an adapter is plugged in: udev's ID_PATH and its port on a multi-port adapter."""

    id_path: str
    port_number: str | None = None

    def match(self) -> str:
        """The rule's match keys."""
        keys = f'ENV{{ID_PATH}}=="{self.id_path}"'
        if self.port_number is not None:
            keys += f', ATTRS{{port_number}}=="{self.port_number}"'
        return keys


def socket_from_by_path(path: str) -> Socket | None:
    """The socket a `/dev/serial/by-path/` name encodes (`ID_PATH` and `-portN` for usb-serial)."""
    if not path.startswith(BY_PATH):
        return None
    name = path[len(BY_PATH) :]
    found = re.fullmatch(r"(?P<id_path>.+?)(?:-port(?P<port>\d+))?", name)
    if found is None or not _SAFE.match(found["id_path"]):
        return None
    return Socket(found["id_path"], found["port"])


class Udevadm:
    """`udevadm info` about a device node (a seam: tests pass a fake)."""

    def __init__(
        self,
        program: str = "udevadm",
        run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    ) -> None:
        self.program = program
        self.run = run

    def properties(self, node: str) -> dict[str, str] | None:
        """The udev properties of `node` (a node or a link to one); None when there is none."""
        exe = shutil.which(self.program)
        if exe is None:
            return None
        try:
            result = self.run(
                [exe, "info", "--query=property", f"--name={node}"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if result.returncode != 0:
            return None
        props = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key.strip()] = value.strip()
        return props


def socket_from_udev(props: Mapping[str, str]) -> Socket | None:
    """The socket from `udevadm info` properties: ID_PATH, and the port from the by-path link."""
    id_path = props.get("ID_PATH", "")
    if not id_path or not _SAFE.match(id_path):
        return None
    for link in props.get("DEVLINKS", "").split():
        found = socket_from_by_path(link)
        if found is not None and found.id_path == id_path:
            return found
    return Socket(id_path)


def existing_rules(text: str) -> dict[str, Socket]:
    """The sockets of the links a rules file (one this module wrote) already makes."""
    found = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _RULE.search(line)
        if match is not None:
            found[match["link"]] = Socket(match["id_path"], match["port"])
    return found


@dataclass
class Rules:
    """The generated file and what could not be placed."""

    text: str
    links: dict[str, Socket]  # link name under /dev/tribune -> socket
    unplaced: list[str]  # device ids


def _link_name(device_id: str, port: str) -> str:
    if port.startswith(LINK_DIR) and _SAFE.match(port[len(LINK_DIR) :]):
        return port[len(LINK_DIR) :]
    return device_id


def _is_serial(port: str) -> bool:
    return port.startswith("/dev/")


def generate(
    config: RoomConfig,
    *,
    config_name: str,
    nodes: Mapping[str, str] | None = None,
    existing: str = "",
    udevadm: Udevadm | None = None,
    group: str = SERVICE_GROUP,
) -> Rules:
    """The rules file for `config` (see the module's docstring for where sockets come from)."""
    udev = udevadm or Udevadm()
    nodes = dict(nodes or {})
    known = existing_rules(existing)
    access = f'GROUP="{group}", MODE="0660"'
    serial: list[str] = []
    other: list[str] = []
    links: dict[str, Socket] = {}
    unplaced: list[str] = []

    for device_id, device in config.devices.items():
        port = device.port
        if device_id not in nodes and _ONBOARD.match(port):
            serial.append(
                f"# {device_id}: {port}: an onboard port, its name is stable (group dialout)"
            )
        elif device_id in nodes or _is_serial(port):
            link = _link_name(device_id, port)
            where, how = _place(device_id, port, link, nodes, known, udev)
            if where is None:
                unplaced.append(device_id)
                serial.append(f"# {device_id}: {port}: {how}")
                continue
            links[link] = where
            serial.append(f"# {device_id}: {port} ({how})")
            serial.append(f'SUBSYSTEM=="tty", {where.match()}, SYMLINK+="tribune/{link}", {access}')
        else:
            other.append(_other_port(device_id, port, access))

    for pad_id, pad in config.buttons.keypads.items():
        other.append(_keypad(pad_id, pad.vid_pid, pad.path, udev, access))

    lines = [
        f"# Generated by `tribune udev-rules --config {config_name}` for room {config.room.id}.",
        "# Run it again after changing a port in room.toml or moving an adapter to another USB",
        "# socket; edits by hand are lost then (docs/install.md, udev).",
        "#",
        "# Each serial device's adapter, found by the USB socket it is in (ID_PATH; cheap adapters",
        f"# share serial numbers), gets /dev/tribune/<device> and group {group}.",
        "",
        'ACTION=="remove", GOTO="tribune_end"',
        'SUBSYSTEM!="tty", GOTO="tribune_serial_end"',
        'ENV{ID_PATH}=="", IMPORT{builtin}="path_id"',
        "",
        *(serial or ["# (no serial devices)"]),
        "",
        'LABEL="tribune_serial_end"',
        "",
        *other,
        "",
        'LABEL="tribune_end"',
    ]
    text = "\n".join(line for i, line in enumerate(lines) if line or lines[i - 1]) + "\n"
    return Rules(text, links, unplaced)


def _place(
    device_id: str,
    port: str,
    link: str,
    nodes: Mapping[str, str],
    known: Mapping[str, Socket],
    udev: Udevadm,
) -> tuple[Socket | None, str]:
    """The device's socket and where it came from, or None and what to do."""
    node = nodes.get(device_id)
    if node is not None:
        found = socket_from_by_path(node)
        if found is not None:
            return found, f"--node {node}"
        props = udev.properties(node)
        found = socket_from_udev(props) if props else None
        if found is not None:
            return found, f"--node {node}: udevadm"
        return None, f"--node {node}: udevadm knows no USB device there (plugged in?)"
    found = socket_from_by_path(port)
    if found is not None:
        return found, "by-path"
    # A /dev/tribune link is defined by its rule; any other name follows the adapter, wherever
    # it is plugged in now (the rule written before is the fallback while it is unplugged).
    own_link = port.startswith(LINK_DIR)
    if own_link and link in known:
        return known[link], "kept from the rules file"
    props = udev.properties(port)
    found = socket_from_udev(props) if props else None
    if found is not None:
        return found, "udevadm: where it is plugged in now"
    if link in known:
        return known[link], "kept from the rules file"
    return None, (
        "which USB socket? Plug the adapter in, then run again with "
        f"--node {device_id}=/dev/ttyUSBn (or its /dev/serial/by-path/ name)"
    )


def _other_port(device_id: str, port: str, access: str) -> str:
    usb = _USB_ID.match(port)
    if usb is None:
        return f"# {device_id}: {port}: network or not a device node, no rule"
    vid, pid = usb[1].lower(), usb[2].lower()
    if (vid, pid) in RELAY_IDS:
        return f"# {device_id}: {port}: access and links from 61-tribune-usbrelay.rules"
    return (
        f"# {device_id}: {port}\n"
        f'SUBSYSTEM=="usb", ENV{{DEVTYPE}}=="usb_device", ATTR{{idVendor}}=="{vid}", '
        f'ATTR{{idProduct}}=="{pid}", {access}'
    )


def _keypad(pad_id: str, vid_pid: str | None, path: str | None, udev: Udevadm, access: str) -> str:
    vid = pid = None
    if vid_pid is not None:
        vid, pid = vid_pid.lower().split(":")
    elif path is not None:
        props = udev.properties(path) or {}
        vid, pid = props.get("ID_VENDOR_ID"), props.get("ID_MODEL_ID")
    if not vid or not pid or not _SAFE.match(vid + pid):
        return (
            f"# keypad {pad_id}: vid:pid unknown (not plugged in?): give it a line in "
            "60-tribune-input.rules (`tribune buttons list` shows it)"
        )
    if (vid, pid) in KEYPAD_IDS:
        return f"# keypad {pad_id} ({vid}:{pid}): access from 60-tribune-input.rules"
    return (
        f"# keypad {pad_id} ({vid}:{pid})\n"
        f'SUBSYSTEM=="input", KERNEL=="event*", ATTRS{{idVendor}}=="{vid}", '
        f'ATTRS{{idProduct}}=="{pid}", {access}'
    )


def write_rules(path: Path, text: str) -> None:
    """Replace `path` atomically (mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
