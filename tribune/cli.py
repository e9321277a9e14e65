"""The `tribune` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from tribune.errors import (
    AuthenticationError,
    ConfigError,
    DeviceError,
    DeviceTimeoutError,
    LinkError,
    NotSupportedError,
    ProtocolError,
    TribuneError,
)

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
EXIT_REFUSED = 5

EPILOG = """exit codes:
  0  ok
  2  invalid input (usage, bad profile or config)
  3  authentication failed
  4  no reply / device unreachable
  5  the device refused the command
"""

log = logging.getLogger("tribune.cli")


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an error."""
    if isinstance(exc, AuthenticationError):
        return EXIT_AUTH
    if isinstance(exc, ConfigError | NotSupportedError):
        return EXIT_INVALID
    if isinstance(exc, DeviceTimeoutError | LinkError | ProtocolError):
        return EXIT_UNREACHABLE
    if isinstance(exc, DeviceError):
        return EXIT_REFUSED
    return 1


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, AuthenticationError):
        return f"authentication failed: {exc}"
    return str(exc)


def _emit(args: argparse.Namespace, human: str, data: dict[str, Any]) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(human + "\n")
    sys.stdout.flush()


def _fail(args: argparse.Namespace, exc: BaseException) -> int:
    code = exit_code_for(exc)
    if getattr(args, "json", False):
        payload = {"ok": False, "error": _error_text(exc), "exit_code": code}
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stderr.write(f"tribune: {_error_text(exc)}\n")
    return code


def _run(
    coro_fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(coro_fn(args))
        except TribuneError as exc:
            return _fail(args, exc)

    return handler


# --- profile ---------------------------------------------------------------------------------


def _loader(args: argparse.Namespace) -> Any:
    from tribune.profiles.loader import ProfileLoader, shipped_profiles_dir

    dirs = [Path(d) for d in (args.profiles_dir or [])] or [shipped_profiles_dir()]
    return ProfileLoader(dirs)


def cmd_profile_validate(args: argparse.Namespace) -> int:
    """Validate profile files; print one line each."""
    loader = _loader(args)
    failures = 0
    results = []
    for raw in args.paths:
        path = Path(raw)
        try:
            loaded = loader.load_file(path)
        except ConfigError as exc:
            failures += 1
            results.append({"path": str(path), "ok": False, "error": str(exc)})
            if not args.json:
                sys.stdout.write(f"{exc}\n")
            continue
        results.append({"path": str(path), "ok": True, "id": loaded.profile.id})
        if not args.json:
            sys.stdout.write(f"{path}: ok ({loaded.profile.id})\n")
    if args.json:
        sys.stdout.write(json.dumps(results, ensure_ascii=False) + "\n")
    return EXIT_INVALID if failures else EXIT_OK


def cmd_profile_list(args: argparse.Namespace) -> int:
    """List the profiles found in the profile folders."""
    loader = _loader(args)
    rows = []
    for path in loader.paths():
        try:
            p = loader.load_file(path).profile
        except ConfigError as exc:
            rows.append({"id": path.stem, "error": str(exc), "path": str(path)})
            continue
        rows.append(
            {
                "id": p.id,
                "kind": str(p.kind),
                "vendor": p.vendor,
                "name": p.name,
                "codec": p.codec,
                "capabilities": sorted(p.capabilities),
                "path": str(path),
            }
        )
    if args.json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return EXIT_OK
    for row in rows:
        if "error" in row:
            sys.stdout.write(f"{row['id']:<22} INVALID  {row['error']}\n")
        else:
            sys.stdout.write(f"{row['id']:<22} {row['kind']:<10} {row['codec']:<7} {row['name']}\n")
    return EXIT_OK


def cmd_profile_show(args: argparse.Namespace) -> int:
    """Show one profile: link, timing, capabilities, poll plan."""
    try:
        loaded = _loader(args).load(args.id)
    except ConfigError as exc:
        return _fail(args, exc)
    p = loaded.profile
    if args.json:
        data = p.model_dump(mode="json", exclude_none=True)
        data["path"] = str(loaded.path)
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return EXIT_OK
    out = [f"{p.id}: {p.name} ({p.kind}, {p.vendor})", f"  file:     {loaded.path}"]
    out.append(f"  protocol: {p.protocol}")
    out.append(f"  codec:    {p.codec}")
    if p.link.serial:
        s = p.link.serial
        out.append(f"  serial:   {s.baudrate} {s.bytesize}{s.parity}{s.stopbits:g}")
    if p.link.tcp_port:
        out.append(f"  tcp port: {p.link.tcp_port}")
    t = p.timing
    out.append(
        f"  timing:   gap {t.gap:g}s, reply timeout {t.reply_timeout:g}s, retries {t.retries}, "
        f"warm-up {t.warmup:g}s, cool-down {t.cooldown:g}s"
    )
    out.append("  capabilities:")
    for name, cap in p.capabilities.items():
        modes = "/".join(m for m, c in (("get", cap.get), ("set", cap.set or cap.set_each)) if c)
        values = ", ".join(cap.values or cap.set_each or {})
        out.append(f"    {name:<14} {p.value_type(name)!s:<6} {modes:<8} {values}")
    if p.actions:
        out.append("  actions: " + ", ".join(p.actions))
    if p.poll:
        out.append("  poll:     " + ", ".join(f"{e.get} every {e.every:g}s" for e in p.poll))
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK


def cmd_profile_table(args: argparse.Namespace) -> int:
    """Print the supported-devices table, or write it into README.md."""
    from tribune.profiles.table import supported_devices_table, update_readme

    table = supported_devices_table(_loader(args))
    if args.write:
        changed = update_readme(Path(args.write), table)
        sys.stdout.write(f"{args.write}: {'updated' if changed else 'up to date'}\n")
    else:
        sys.stdout.write(table)
    return EXIT_OK


# --- query / send ------------------------------------------------------------------------------


def _password(args: argparse.Namespace) -> str | None:
    password: str | None = args.password or os.environ.get("TRIBUNE_DEVICE_PASSWORD")
    return password


def _line_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.baud:
        overrides["baudrate"] = args.baud
    return overrides


async def _with_device(
    args: argparse.Namespace, work: Callable[[Any], Coroutine[Any, Any, int]]
) -> int:
    from tribune.drivers.runtime import DeviceRuntime

    profile = _loader(args).load(args.profile).profile
    options: dict[str, str] = {}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r}: want KEY=VALUE, e.g. id=01")
        options[key] = value
    runtime = DeviceRuntime(
        args.port,  # messages name the port the technician typed
        profile,
        args.port,
        options=options,
        line=_line_overrides(args),
        password=_password(args),
        poll=False,
    )
    await runtime.start()
    try:
        return await work(runtime)
    finally:
        await runtime.stop()


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return ", ".join(f"{src}>{out}" for out, src in value.items())
    return str(value)


async def _query(args: argparse.Namespace) -> int:
    async def work(runtime: Any) -> int:
        value = await runtime.get(args.capability, output=args.output)
        if isinstance(value, dict) and args.output is not None:
            value = value.get(args.output)
        _emit(
            args,
            _format_value(value),
            {"ok": True, "capability": args.capability, "value": value},
        )
        return EXIT_OK

    return await _with_device(args, work)


async def _send(args: argparse.Namespace) -> int:
    async def work(runtime: Any) -> int:
        cap = runtime.compiled.capability(args.capability)
        value = runtime.compiled.parse_value(cap, args.value)
        await runtime.set(args.capability, value)
        _emit(
            args,
            f"{args.capability}: {_format_value(value)} (acknowledged)",
            {"ok": True, "capability": args.capability, "value": value},
        )
        return EXIT_OK

    return await _with_device(args, work)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo room."""
    from tribune.demo import run_demo

    _service_logging(args)
    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.fleet is not None:
        from tribune.demo_fleet import run_fleet_demo

        if args.fleet < 1:
            sys.stderr.write("tribune demo: --fleet wants a number of rooms, 1 or more\n")
            return EXIT_INVALID
        return asyncio.run(run_fleet_demo(args.fleet, args.hub_port, args.speed, data_dir))
    if args.broker is not None or args.room_id is not None:
        from tribune.config import SyncSection
        from tribune.hub.subscriber import check_room_id

        try:
            if args.broker is None:
                raise ValueError("--room-id needs --broker URL")
            SyncSection(broker=args.broker)
            check_room_id(args.room_id or "baku/room-1")
        except ValueError as exc:
            message = str(exc).splitlines()[-1].strip().removeprefix("Value error, ")
            sys.stderr.write(f"tribune demo: {message}\n")
            return EXIT_INVALID
    return asyncio.run(
        run_demo(
            args.host,
            args.port,
            args.speed,
            data_dir,
            broker=args.broker,
            room_id=args.room_id or "baku/room-1",
        )
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the room service."""
    from tribune.service import serve

    _service_logging(args)
    return asyncio.run(serve(Path(args.config), Path(args.data_dir), args.port))


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a room config."""
    from tribune.config import line_of, load_config
    from tribune.room import check_config_values

    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        sys.stdout.write(f"{exc}\n")
        return EXIT_INVALID
    problems = check_config_values(config, _loader(args))
    if config.buttons.keypads:
        from tribune.inputs.check import check_button_values

        problems += check_button_values(config, _loader(args))
    if problems:
        text = Path(args.config).read_text(encoding="utf-8")
        for path, reason in problems:
            line = line_of(text, path)
            where = f"{args.config}:{line}" if line else args.config
            sys.stdout.write(f"{where}: {'.'.join(path)}: {reason}\n")
        return EXIT_INVALID
    sys.stdout.write(
        f"{args.config}: ok (room {config.room.id}, {len(config.devices)} devices, "
        f"{len(config.scenes)} scenes, {len(config.schedule)} schedule entries)\n"
    )
    return EXIT_OK


def _service_logging(args: argparse.Namespace) -> None:
    """A service logs what a technician needs at 8 am: warnings by default, -v for more."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.getLogger().setLevel(level)


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", required=True, help="profile id or path to a profile file")
    p.add_argument(
        "--port",
        required=True,
        help="device path, /dev/serial/by-id/..., tcp://HOST:PORT, socket://HOST:PORT or "
        "rfc2217://HOST:PORT",
    )
    p.add_argument("--password", help="device password (or TRIBUNE_DEVICE_PASSWORD)")
    p.add_argument("--baud", type=int, help="override the profile's baud rate")
    p.add_argument(
        "--option", action="append", metavar="KEY=VALUE", help="device option, e.g. id=01"
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def _add_profile_dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profiles-dir",
        action="append",
        metavar="DIR",
        help="folder of <kind>/<id>.yaml profiles (default: the shipped firmware-profiles)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subcommand per task."""
    parser = argparse.ArgumentParser(
        prog="tribune",
        description="Room control for classrooms: drive projectors, boards and switchers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    profile = sub.add_parser("profile", help="validate, list and show device profiles")
    psub = profile.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    validate = psub.add_parser("validate", help="check profile files", epilog=EPILOG)
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.add_argument("--json", action="store_true")
    _add_profile_dirs(validate)
    validate.set_defaults(handler=cmd_profile_validate)
    plist = psub.add_parser("list", help="list the available profiles")
    plist.add_argument("--json", action="store_true")
    _add_profile_dirs(plist)
    plist.set_defaults(handler=cmd_profile_list)
    show = psub.add_parser("show", help="show one profile")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    _add_profile_dirs(show)
    show.set_defaults(handler=cmd_profile_show)

    table = psub.add_parser("table", help="the supported-devices table (Markdown)")
    table.add_argument("--write", metavar="README", help="update the table in this file")
    _add_profile_dirs(table)
    table.set_defaults(handler=cmd_profile_table)

    # Technician tools (profile store, probe, detect, USB scan): tribune/cli_technician.py.
    from tribune.cli_technician import add_profile_commands, add_technician_commands

    add_profile_commands(psub, EPILOG)
    add_technician_commands(sub, EPILOG)

    query = sub.add_parser(
        "query",
        help="read a capability from a device",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_device_args(query)
    _add_profile_dirs(query)
    query.add_argument("capability")
    query.add_argument("--output", help="switcher output, for `route`")
    query.set_defaults(handler=_run(_query))

    send = sub.add_parser(
        "send",
        help="set a capability on a device",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_device_args(send)
    _add_profile_dirs(send)
    send.add_argument("capability")
    send.add_argument("value", help="on/off, a number, a source name, or INPUT>OUTPUT for route")
    send.set_defaults(handler=_run(_send))

    demo = sub.add_parser("demo", help="run Baku training room 1 on simulated devices")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--speed", type=float, default=10.0, help="simulator time factor")
    demo.add_argument("--data-dir", help="keep the demo's data here (default: a temp dir)")
    demo.add_argument("--broker", help="also sync to the hub's broker (mqtt://host:1883)")
    demo.add_argument("--room-id", help="the room's id at the hub (default baku/room-1)")
    demo.add_argument(
        "--fleet",
        type=int,
        metavar="N",
        help="instead: a broker, a hub (fleet page on --hub-port) and N simulated rooms",
    )
    demo.add_argument("--hub-port", type=int, default=8090, help="the fleet demo's hub port")
    demo.set_defaults(handler=cmd_demo)

    serve = sub.add_parser("serve", help="run the room service (devices, API, panel, schedules)")
    serve.add_argument("--config", required=True, help="room config (room.toml)")
    serve.add_argument("--data-dir", default="/var/lib/tribune", help="state, audit and tokens")
    serve.add_argument("--port", type=int, help="HTTP port (default: the config's, 8080)")
    serve.set_defaults(handler=cmd_serve)

    from tribune.hub.cli import add_hub_parser

    add_hub_parser(sub)

    config = sub.add_parser("config", help="check a room config")
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = csub.add_parser("check", help="validate room.toml (FILE:LINE: key: reason)")
    check.add_argument("config")
    _add_profile_dirs(check)
    check.set_defaults(handler=cmd_config_check)

    from tribune.sim.cli import add_sim_parser

    add_sim_parser(sub)

    from tribune.inputs.cli import add_buttons_parser

    add_buttons_parser(sub)

    # The installation: udev rules for the room's devices, and the doctor (docs/install.md).
    from tribune.cli_deploy import add_deploy_commands

    add_deploy_commands(sub)
    return parser


def setup_logging(verbosity: int) -> None:
    """Log to stderr: errors only by default (the command says what failed), -v info, -vv debug."""
    level = {0: logging.ERROR, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else EXIT_INVALID
    setup_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except TribuneError as exc:
        return _fail(args, exc)
    return code


if __name__ == "__main__":
    sys.exit(main())
