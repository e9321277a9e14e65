"""The installation's commands: `tribune udev-rules` and `tribune doctor` (docs/install.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tribune.errors import ConfigError

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_INVALID = 2
DEFAULT_CONFIG = "/etc/tribune/room.toml"


def add_deploy_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `udev-rules` and `doctor`."""
    from tribune.udev import RULES_PATH

    udev = sub.add_parser(
        "udev-rules",
        help="udev rules: /dev/tribune/<device> by USB socket, access for the service",
        description="Print (or --write) udev rules giving each serial device of room.toml a "
        "/dev/tribune/<device> link keyed on the USB socket its adapter is in, with group "
        "tribune; keypads and USB relays not covered by the shipped rules get access lines. "
        "Exit 1 when a device could not be placed (its comment says how).",
    )
    udev.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"room.toml (default {DEFAULT_CONFIG})"
    )
    udev.add_argument(
        "--write",
        nargs="?",
        const=RULES_PATH,
        metavar="RULES",
        help=f"write the file (default {RULES_PATH}); links it already makes are kept",
    )
    udev.add_argument(
        "--node",
        action="append",
        metavar="DEVICE=NODE",
        help="the device's adapter is NODE now (/dev/ttyUSB0 or a /dev/serial/by-path/ name): "
        "key its rule on that socket",
    )
    udev.set_defaults(handler=cmd_udev_rules)

    doctor = sub.add_parser(
        "doctor",
        help="check this installation and say what to fix",
        description="Units active, service user and groups, config and profiles, device "
        "nodes and their access for the service, data dir, disk, broker, clock. "
        "Exit 0 when all is well, 1 when something needs fixing.",
    )
    doctor.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"room.toml (default {DEFAULT_CONFIG})"
    )
    doctor.add_argument(
        "--data-dir",
        help="the service's data dir (default $TRIBUNE_DATA_DIR or /var/lib/tribune)",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON for scripts")
    doctor.set_defaults(handler=cmd_doctor)


def _nodes(items: list[str] | None, devices: dict[str, Any]) -> dict[str, str]:
    nodes = {}
    for item in items or []:
        device, sep, node = item.partition("=")
        if not sep or not node:
            raise ConfigError(f"--node {item!r}: want DEVICE=NODE, e.g. projector=/dev/ttyUSB0")
        if device not in devices:
            raise ConfigError(f"--node {item!r}: no device {device!r} ({', '.join(devices)})")
        nodes[device] = node
    return nodes


def cmd_udev_rules(args: argparse.Namespace) -> int:
    """Generate the rules; print them or write them."""
    from tribune.config import load_config
    from tribune.udev import generate, write_rules

    try:
        config = load_config(Path(args.config))
        nodes = _nodes(args.node, dict(config.devices))
    except ConfigError as exc:
        sys.stderr.write(f"tribune udev-rules: {exc}\n")
        return EXIT_INVALID
    existing = ""
    if args.write:
        try:
            existing = Path(args.write).read_text(encoding="utf-8")
        except FileNotFoundError:
            pass
        except OSError as exc:
            sys.stderr.write(f"tribune udev-rules: {args.write}: {exc.strerror}\n")
            return EXIT_INVALID
    rules = generate(config, config_name=args.config, nodes=nodes, existing=existing)
    for device_id in rules.unplaced:
        sys.stderr.write(
            f"tribune udev-rules: {device_id}: not placed (see its comment in the rules)\n"
        )
    if not args.write:
        sys.stdout.write(rules.text)
    else:
        try:
            write_rules(Path(args.write), rules.text)
        except OSError as exc:
            sys.stderr.write(f"tribune udev-rules: {args.write}: {exc.strerror}\n")
            return EXIT_INVALID
        links = ", ".join(f"/dev/tribune/{name}" for name in rules.links) or "no links"
        sys.stdout.write(
            f"{args.write}: {links}\n"
            "apply: udevadm control --reload && udevadm trigger --action=change "
            "--subsystem-match=tty --subsystem-match=input --subsystem-match=usb\n"
        )
    return EXIT_PROBLEMS if rules.unplaced else EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the installation; exit 1 when there is something to fix."""
    from tribune.doctor import Doctor, render

    data_dir = Path(args.data_dir or os.environ.get("TRIBUNE_DATA_DIR") or "/var/lib/tribune")
    checks = Doctor(Path(args.config), data_dir).run()
    problems = any(check.status == "problem" for check in checks)
    if args.json:
        payload = {"ok": not problems, "checks": [check.as_dict() for check in checks]}
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render(checks))
    return EXIT_PROBLEMS if problems else EXIT_OK
