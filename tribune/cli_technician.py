"""Technician subcommands: `profile install|rollback|history|probe`, `detect`, `usb scan`.

Kept apart from cli.py so the main parser stays readable; `add_technician_commands` hooks them in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tribune.errors import AuthenticationError, ConfigError, TribuneError

DEFAULT_DATA_DIR = "/var/lib/tribune"

EXIT_OK = 0
EXIT_UNREACHABLE = 4


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("TRIBUNE_DATA_DIR") or DEFAULT_DATA_DIR)


def _store(args: argparse.Namespace) -> Any:
    from tribune.profiles.store import ProfileStore

    return ProfileStore(_data_dir(args))


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


# --- install / rollback / history ------------------------------------------------------------


def cmd_profile_install(args: argparse.Namespace) -> int:
    """Validate a profile file and install it into the data dir."""
    record = _store(args).install(Path(args.file), by=args.by)
    if args.json:
        _print_json({"ok": True, **record.to_json()})
    else:
        previous = (record.previous_sha256 or "the shipped profile")[:12]
        sys.stdout.write(
            f"installed {record.id} version {record.version} (sha256 {record.sha256[:12]}) "
            f"by {record.installed_by}; replaces {previous}\n"
        )
    return EXIT_OK


def cmd_profile_rollback(args: argparse.Namespace) -> int:
    """Put back the version installed before the current one."""
    record = _store(args).rollback(args.id, by=args.by)
    if args.json:
        _print_json({"ok": True, **record.to_json()})
    elif record.sha256 == "shipped":
        sys.stdout.write(f"{record.id}: removed the installed profile; the shipped one is in use\n")
    else:
        sys.stdout.write(
            f"{record.id}: rolled back to version {record.version} (sha256 {record.sha256[:12]})\n"
        )
    return EXIT_OK


def cmd_profile_history(args: argparse.Namespace) -> int:
    """List the installs and rollbacks of a profile, newest first."""
    entries = _store(args).history(args.id)
    if args.json:
        _print_json([{**e.record.to_json(), "current": e.current} for e in entries])
        return EXIT_OK
    if not entries:
        sys.stdout.write(f"{args.id}: never installed here; the shipped profile is in use\n")
        return EXIT_OK
    for entry in entries:
        r = entry.record
        mark = "*" if entry.current else " "
        what = "shipped default" if r.sha256 == "shipped" else f"v{r.version} {r.sha256[:12]}"
        sys.stdout.write(
            f"{mark} {_when(r.installed_at)}  {r.action:<8}  {what:<24} by {r.installed_by}\n"
        )
    return EXIT_OK


# --- probe -----------------------------------------------------------------------------------


def _load_profile(args: argparse.Namespace, id_or_path: str) -> Any:
    store = _store(args)
    path = Path(id_or_path)
    if path.suffix in (".yaml", ".yml"):
        return store.validate(path).profile
    return store.loader().load(id_or_path).profile


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def print_probe_report(report: Any) -> None:
    """The human form of a probe report."""
    where = f"{report.port} at {report.line}" if report.line else report.port
    out = [f"profile   {report.profile_id} on {where}"]
    identity = report.identity()
    for name in ("model", "firmware", "serial"):
        out.append(f"{name:<9} {identity.get(name, '?')}")
    out.append("identify")
    for result in report.identify:
        state = "ok" if result.ok else "FAIL"
        got = repr(result.value) if result.answered else result.error
        expect = f" (expect {result.expect!r})" if result.expect else ""
        out.append(f"  {state:<4} {result.query} -> {got}{expect}")
    if report.readings or report.read_errors:
        out.append("readings")
        for name, value in report.readings.items():
            out.append(f"  {name:<14} {_format(value)}")
        for name, error in report.read_errors.items():
            out.append(f"  {name:<14} (not read: {error})")
    if report.matches:
        out.append(f"verdict   the device matches {report.profile_id}")
    else:
        out.append(f"verdict   the device does NOT match {report.profile_id}:")
        out += [f"  - {problem}" for problem in report.problems()]
    sys.stdout.write("\n".join(out) + "\n")


async def _probe(args: argparse.Namespace) -> int:
    from tribune.drivers.probe import probe

    profile = _load_profile(args, args.profile)
    line = {"baudrate": args.baud} if args.baud else None
    password = args.password or os.environ.get("TRIBUNE_DEVICE_PASSWORD")
    report = await probe(profile, args.port, password=password, line=line, timeout=args.timeout)
    if args.json:
        _print_json({"ok": report.matches, **report.to_json()})
    else:
        print_probe_report(report)
    return EXIT_OK if report.matches else EXIT_UNREACHABLE


def cmd_profile_probe(args: argparse.Namespace) -> int:
    """Run a profile's identify queries against a port and read every capability once."""
    return asyncio.run(_probe(args))


# --- detect ----------------------------------------------------------------------------------


class ProgressBar:
    """Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise."""

    WIDTH = 24

    def __init__(self, stream: Any = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False

    def __call__(self, done: int, total: int, attempt: Any) -> None:
        if self.quiet:
            return
        if done >= total:
            if self.tty and self._drawn:
                self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
            return
        label = f"{attempt.profile.id} at {attempt.described}"
        if self.tty:
            filled = self.WIDTH * done // max(total, 1)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {done}/{total} {label}"[:79].ljust(79))
            self._drawn = True
        else:
            self.stream.write(f"detect: {done + 1}/{total} trying {label}\n")
        self.stream.flush()


def _bauds(text: str | None) -> tuple[int, ...]:
    from tribune.drivers.detect import USUAL_BAUDS

    if not text:
        return USUAL_BAUDS
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--bauds {text!r}: want rates separated by commas") from None


def print_candidates(port: str, candidates: list[Any]) -> None:
    """The human form of detect's findings."""
    out = [f"profiles answering on {port}, best first:"]
    for rank, c in enumerate(candidates, 1):
        verdict = "matches" if c.matches else "partial"
        where = c.line or c.url
        known = "  ".join(f"{k} {v}" for k, v in c.identity.items())
        out.append(f"  {rank}. {c.profile_id:<20} {where:<12} score {c.score}  {verdict}  {known}")
        if c.note:
            out.append(f"     {c.note}")
    best = candidates[0]
    baud = f" --baud {best.baud}" if best.baud else ""
    out.append(f"next: tribune profile probe {best.profile_id} --port {best.url}{baud}")
    sys.stdout.write("\n".join(out) + "\n")


async def _detect(args: argparse.Namespace) -> int:
    from tribune.drivers.detect import detect

    loader = _store(args).loader()
    profiles = []
    seen: set[str] = set()
    for path in loader.paths():  # installed first: an installed profile hides the shipped one
        if path.stem in seen:
            continue
        seen.add(path.stem)
        try:
            profiles.append(loader.load_file(path).profile)
        except ConfigError as exc:  # one broken profile must not stop the search
            sys.stderr.write(f"tribune: skipping {exc}\n")
    password = args.password or os.environ.get("TRIBUNE_DEVICE_PASSWORD")
    candidates = await detect(
        args.port,
        profiles,
        timeout=args.timeout,
        bauds=_bauds(args.bauds),
        scan=not args.no_scan,
        password=password,
        progress=ProgressBar(quiet=args.quiet),
    )
    if args.json:
        _print_json(
            {"ok": True, "port": args.port, "candidates": [c.to_json() for c in candidates]}
        )
    else:
        print_candidates(args.port, candidates)
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    """Find the profiles (and line speed) the device on a port answers to."""
    return asyncio.run(_detect(args))


# --- usb scan --------------------------------------------------------------------------------


def cmd_usb_scan(args: argparse.Namespace) -> int:
    """List USB devices, the ttys they provide and what to try with them."""
    from tribune.usbscan import pyusb_devices, scan_usb

    loader = _store(args).loader()
    profiles = []
    for path in loader.paths():
        try:
            profiles.append(loader.load_file(path).profile)
        except ConfigError as exc:
            sys.stderr.write(f"tribune: skipping {exc}\n")
    findings = scan_usb(pyusb_devices(), profiles)
    if args.json:
        _print_json([f.to_json() for f in findings])
        return EXIT_OK
    if not findings:
        sys.stdout.write("no USB devices found\n")
        return EXIT_OK
    for f in findings:
        d = f.device
        name = " ".join(x for x in (d.manufacturer, d.product) if x) or "(no name)"
        serial = f"  serial {d.serial}" if d.serial else ""
        sys.stdout.write(f"{d.ids}  {name}{serial}\n")
        for path in [*f.ttys, *f.stable]:
            sys.stdout.write(f"    {path}\n")
        if f.hint:
            sys.stdout.write(f"    -> {f.hint}\n")
    return EXIT_OK


# --- registration ----------------------------------------------------------------------------


def _fails_with(handler: Any) -> Any:
    """Turn tribune errors into the documented exit codes and a one-line reason."""

    def run(args: argparse.Namespace) -> int:
        try:
            code: int = handler(args)
        except TribuneError as exc:
            from tribune.cli import exit_code_for

            code = exit_code_for(exc)
            reason = (
                f"authentication failed: {exc}"
                if isinstance(exc, AuthenticationError)
                else str(exc)
            )
            if getattr(args, "json", False):
                _print_json({"ok": False, "error": reason, "exit_code": code})
            sys.stderr.write(f"tribune: {reason}\n")
        return code

    return run


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help=f"where installed profiles live (default $TRIBUNE_DATA_DIR or {DEFAULT_DATA_DIR})",
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_profile_commands(psub: Any, epilog: str) -> None:
    """`profile install|rollback|history|probe`."""
    fmt = argparse.RawDescriptionHelpFormatter
    install = psub.add_parser(
        "install", help="validate a profile file and install it", epilog=epilog, formatter_class=fmt
    )
    install.add_argument("file", metavar="FILE")
    install.add_argument("--by", help="who installs it (default: the login name)")
    _common(install)
    install.set_defaults(handler=_fails_with(cmd_profile_install))

    rollback = psub.add_parser(
        "rollback",
        help="put back the previously installed version",
        epilog=epilog,
        formatter_class=fmt,
    )
    rollback.add_argument("id", metavar="ID")
    rollback.add_argument("--by", help="who rolls back (default: the login name)")
    _common(rollback)
    rollback.set_defaults(handler=_fails_with(cmd_profile_rollback))

    history = psub.add_parser("history", help="installs and rollbacks of a profile")
    history.add_argument("id", metavar="ID")
    _common(history)
    history.set_defaults(handler=_fails_with(cmd_profile_history))

    probe = psub.add_parser(
        "probe",
        help="check a device against a profile (exit 0 matches, 4 does not)",
        epilog=epilog,
        formatter_class=fmt,
    )
    probe.add_argument("profile", metavar="FILE|ID")
    probe.add_argument("--port", required=True, help="device path or tcp://HOST:PORT ...")
    probe.add_argument("--password", help="device password (or TRIBUNE_DEVICE_PASSWORD)")
    probe.add_argument("--baud", type=int, help="override the profile's baud rate")
    probe.add_argument(
        "--timeout", type=float, help="seconds to wait for each reply (default: the profile's)"
    )
    _common(probe)
    probe.set_defaults(handler=_fails_with(cmd_profile_probe))


def add_technician_commands(sub: Any, epilog: str) -> None:
    """`detect` and `usb scan`."""
    detect = sub.add_parser(
        "detect",
        help="find the profile (and baud rate) of the device on a port",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    detect.add_argument("--port", required=True, help="device path or tcp://HOST[:PORT] ...")
    detect.add_argument("--password", help="device password (or TRIBUNE_DEVICE_PASSWORD)")
    detect.add_argument(
        "--timeout", type=float, default=0.5, help="seconds to wait for each reply (0.5)"
    )
    detect.add_argument(
        "--bauds", metavar="LIST", help="rates to scan, e.g. 9600,38400 (default: the usual five)"
    )
    detect.add_argument(
        "--no-scan", action="store_true", help="only each profile's own line settings"
    )
    detect.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _common(detect)
    detect.set_defaults(handler=_fails_with(cmd_detect))

    usb = sub.add_parser("usb", help="USB devices")
    usub = usb.add_subparsers(dest="usb_command", required=True, metavar="ACTION")
    scan = usub.add_parser("scan", help="list USB devices, their ttys and what to try")
    _common(scan)
    scan.set_defaults(handler=_fails_with(cmd_usb_scan))
