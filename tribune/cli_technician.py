"""Technician subcommands: `profile install|rollback|history|probe|flash`, `detect`, `usb scan`.

`profile flash` (and `rollback`/`history` with `--device`/`--url`) talk to the running service's
technician API; the others work on the data dir and the ports directly.

Kept apart from cli.py so the main parser stays readable; `add_technician_commands` hooks them in.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tribune.errors import AuthenticationError, ConfigError, LinkError, TribuneError

DEFAULT_DATA_DIR = "/var/lib/tribune"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_AUTH = 3
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
    if args.device or args.url:
        return _service_rollback(args)
    if not args.id:
        raise ConfigError("give a profile ID (offline) or --device ID (through the service)")
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
    if args.device or args.url:
        return _service_history(args)
    if not args.id:
        raise ConfigError("give a profile ID (offline) or --device ID (through the service)")
    entries = _store(args).history(args.id)
    rows = [{**e.record.to_json(), "current": e.current} for e in entries]
    _print_history(args, args.id, rows)
    return EXIT_OK


def _print_history(args: argparse.Namespace, profile_id: str, rows: list[dict[str, Any]]) -> None:
    if args.json:
        _print_json(rows)
        return
    if not rows:
        sys.stdout.write(f"{profile_id}: never installed here; the shipped profile is in use\n")
        return
    for r in rows:
        mark = "*" if r["current"] else " "
        sha = r["sha256"]
        what = "shipped default" if sha == "shipped" else f"v{r['version']} {sha[:12]}"
        sys.stdout.write(
            f"{mark} {_when(r['installed_at'])}  {r['action']:<8}  {what:<24} "
            f"by {r['installed_by']}\n"
        )


# --- through the running service: flash, rollback --device, history --url ----------------------


def _client(args: argparse.Namespace) -> Any:
    from tribune.api.client import DEFAULT_URL, TechnicianClient

    url = args.url or os.environ.get("TRIBUNE_URL") or DEFAULT_URL
    return TechnicianClient(url, _token(args))


def _token(args: argparse.Namespace) -> str | None:
    """--token, $TRIBUNE_TECHNICIAN_TOKEN, or the data dir's token file when readable."""
    token: str | None = args.token or os.environ.get("TRIBUNE_TECHNICIAN_TOKEN")
    if token:
        return token.strip()
    try:
        return (_data_dir(args) / "tokens" / "technician.token").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _through_service(args: argparse.Namespace, work: Any) -> int:
    """Run `work(client)`; the service's problems become the CLI's exit codes."""
    from tribune.api.client import ServiceProblem

    try:
        code: int = work(_client(args))
    except ServiceProblem as problem:
        code = _exit_for_problem(problem)
        if getattr(args, "json", False):
            _print_json({"ok": False, "exit_code": code, **problem.body})
        reason = problem.detail
        if code == EXIT_AUTH:
            reason = f"authentication failed: {reason} (give --token or TRIBUNE_TECHNICIAN_TOKEN)"
        problems = problem.body.get("problems") or []
        if problem.kind == "probe-mismatch":
            profile = (problem.body.get("probe") or {}).get("profile") or "the profile"
            reason = f"{args.device} does not match {profile}; nothing changed:"
        sys.stderr.write(f"tribune: {reason}\n")
        for line in problems:
            sys.stderr.write(f"  - {line}\n")
        if problem.kind == "probe-mismatch":
            sys.stderr.write("--force installs it anyway\n")
    return code


def _exit_for_problem(problem: Any) -> int:
    if problem.status in (401, 403):
        return EXIT_AUTH
    if problem.kind in ("probe-mismatch", "flash-in-progress", "nothing-to-roll-back"):
        return EXIT_UNREACHABLE  # refused: the device or the store is not as asked
    if problem.status in (404, 422):
        return EXIT_INVALID
    return EXIT_FAILED


def _running(data: dict[str, Any]) -> str:
    sha = (data.get("sha256") or "")[:12]
    origin = f", {data['origin']}" if data.get("origin") else ""
    return f"{data['profile']} version {data.get('version') or '?'} (sha256 {sha}{origin})"


def _print_outcome(data: dict[str, Any]) -> None:
    out = []
    if data["action"] == "flash":
        out.append(f"{data['device']}: flashed {_running(data)}")
    else:
        out.append(f"{data['device']}: rolled back to {_running(data)}")
    out.append(f"  before: {_running(data['previous'])}")
    installed = data.get("installed")
    if installed is None:
        out.append("  store:  unchanged")
    else:
        out.append(f"  store:  {installed['action']} by {installed['installed_by']}")
    report = data.get("probe")
    if report is not None:
        known = "  ".join(f"{k} {report[k]}" for k in ("model", "firmware", "serial") if report[k])
        verdict = "matches" if report["matches"] else "does NOT match (forced)"
        out.append(f"  probe:  {verdict}{'  ' + known if known else ''}")
        out += [f"    - {problem}" for problem in report["problems"]]
    elif data.get("probe_error"):
        out.append(f"  probe:  failed (forced): {data['probe_error']}")
    out += [f"  warning: {w}" for w in data.get("warnings", [])]
    if data.get("stale_devices"):
        stale = ", ".join(data["stale_devices"])
        out.append(f"  note:   {stale} still run the version before (flash them, or restart)")
    sys.stdout.write("\n".join(out) + "\n")


def cmd_profile_flash(args: argparse.Namespace) -> int:
    """Put a profile on a device of the running service: probe, install, hot-swap."""
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=str(path)) from None

    def work(client: Any) -> int:
        data = client.flash(
            args.device,
            text,
            filename=str(path),
            force=args.force,
            timeout=args.timeout,
            by=args.by or _login(),
        )
        if args.json:
            _print_json({"ok": True, **data})
        else:
            _print_outcome(data)
        return EXIT_OK

    return _through_service(args, work)


def _service_rollback(args: argparse.Namespace) -> int:
    if not args.device:
        raise ConfigError("--url: a rollback through the service needs --device ID")
    if args.id:
        raise ConfigError("give a profile ID (offline) or --device ID (through the service)")

    def work(client: Any) -> int:
        data = client.rollback(args.device, by=args.by or _login())
        if args.json:
            _print_json({"ok": True, **data})
        else:
            _print_outcome(data)
        return EXIT_OK

    return _through_service(args, work)


def _service_history(args: argparse.Namespace) -> int:
    def work(client: Any) -> int:
        profile_id = args.id
        if args.device:
            found = [d for d in client.devices() if d["device"] == args.device]
            if not found:
                raise ConfigError(f"no device {args.device!r} in the running room")
            profile_id = found[0]["profile"]
        if not profile_id:
            raise ConfigError("give a profile ID or --device ID")
        data = client.history(profile_id)
        _print_history(args, profile_id, data["entries"])
        return EXIT_OK

    return _through_service(args, work)


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in a container: the token is recorded anyway
        return None


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
        value = identity.get(name)
        if value is None and name == "model" and report.models and report.matches:
            # Some protocols (ESC/VP21) have no model query: say what the profile covers.
            value = f"one of: {', '.join(report.models)} (the protocol has no model query)"
        out.append(f"{name:<9} {value if value is not None else '?'}")
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
    why = ""
    try:
        devices = list(pyusb_devices())
    except LinkError as exc:  # no libusb here (or no /dev/bus/usb in a container): none to see
        devices, why = [], str(exc)
    findings = scan_usb(devices, profiles)
    if args.json:
        _print_json([f.to_json() for f in findings])
        if why:
            sys.stderr.write(f"tribune: {why}\n")
        return EXIT_OK
    if not findings:
        sys.stdout.write(f"no USB devices found{f' ({why})' if why else ''}\n")
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


FLASH_EPILOG = """exit codes:
  0  flashed: the device runs the new profile
  2  invalid profile (FILE:LINE: field: reason) or unknown device
  3  authentication failed (the technician token: --token, TRIBUNE_TECHNICIAN_TOKEN, or
     DATA_DIR/tokens/technician.token)
  4  refused, nothing changed: the device does not match (the list of what did not), another
     flash of it is running, or the service is unreachable
"""


def _service_args(p: argparse.ArgumentParser, device_help: str | None) -> None:
    if device_help is not None:
        p.add_argument("--device", help=device_help)
    p.add_argument(
        "--url",
        help="the running service (default $TRIBUNE_URL or http://127.0.0.1:8080)",
    )
    p.add_argument(
        "--token",
        help="the technician token (default $TRIBUNE_TECHNICIAN_TOKEN, or DATA_DIR's token file)",
    )


def add_profile_commands(psub: Any, epilog: str) -> None:
    """`profile install|rollback|history|probe|flash`."""
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
    rollback.add_argument(
        "id", metavar="ID", nargs="?", help="profile id: roll back the data dir's install (offline)"
    )
    rollback.add_argument("--by", help="who rolls back (default: the login name)")
    _service_args(rollback, "roll back this device of the running service (and hot-swap it)")
    _common(rollback)
    rollback.set_defaults(handler=_fails_with(cmd_profile_rollback))

    history = psub.add_parser("history", help="installs and rollbacks of a profile")
    history.add_argument("id", metavar="ID", nargs="?", help="profile id")
    _service_args(history, "the history of the profile this device of the running service runs")
    _common(history)
    history.set_defaults(handler=_fails_with(cmd_profile_history))

    flash = psub.add_parser(
        "flash",
        help="put a profile on a device of the running service (probe, install, hot-swap)",
        epilog=FLASH_EPILOG,
        formatter_class=fmt,
    )
    flash.add_argument("file", metavar="FILE")
    flash.add_argument("--device", required=True, help="the device's name in room.toml")
    flash.add_argument(
        "--force", action="store_true", help="install even if the device does not match"
    )
    flash.add_argument(
        "--timeout",
        type=float,
        help="seconds to wait for each probe reply (default: the profile's)",
    )
    flash.add_argument("--by", help="your name, for the history (default: the login name)")
    _service_args(flash, None)
    _common(flash)
    flash.set_defaults(handler=_fails_with(cmd_profile_flash))

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
