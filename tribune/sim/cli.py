"""`tribune sim ID`: serve one device simulator on a pty and/or a TCP port until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from tribune.sim.registry import SIMULATORS
from tribune.sim.runner import launch_simulator

EXIT_OK = 0
EXIT_INVALID = 2


def add_sim_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `sim` subcommand."""
    listing = "\n".join(f"  {key:16} {cls.title}" for key, cls in SIMULATORS.items())
    parser = subparsers.add_parser(
        "sim",
        help="run a device simulator",
        description="Serve a simulated device on a pty and/or TCP until SIGINT or SIGTERM.",
        epilog=f"simulators:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("id", choices=sorted(SIMULATORS), metavar="ID", help="simulator id")
    parser.add_argument("--pty", action="store_true", help="serve on a pty; prints its path")
    parser.add_argument("--tcp", metavar="HOST:PORT", type=_host_port, help="listen on TCP")
    parser.add_argument("--link", metavar="PATH", help="keep a symlink to the pty (implies --pty)")
    parser.add_argument("--baud", type=int, help="expected baud; ignore bytes at other settings")
    parser.add_argument("--speed", type=float, default=1.0, help="time factor (default 1)")
    parser.add_argument("--password", help="device password (pjlink, epson-escvp21)")
    parser.add_argument("--class", dest="pjlink_class", type=int, choices=(1, 2), help="PJLink")
    faults = parser.add_argument_group("faults")
    faults.add_argument("--drop", type=int, default=0, metavar="N", help="drop the next N replies")
    faults.add_argument("--garbage", type=int, default=0, metavar="N", help="garble N replies")
    faults.add_argument("--delay", type=float, default=0.0, metavar="S", help="delay replies")
    faults.add_argument("--hang-up-after", type=int, metavar="N", help="hang up at command N")
    faults.add_argument("--busy", action="store_true", help="answer busy to everything")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    parser.set_defaults(handler=run_sim)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def run_sim(args: argparse.Namespace) -> int:
    """Handler of `tribune sim`; returns the exit code."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.pty and args.tcp is None and args.link is None:
        print("tribune sim: give --pty and/or --tcp HOST:PORT", file=sys.stderr)
        return EXIT_INVALID
    try:
        return asyncio.run(_serve(args))
    except ValueError as error:
        print(f"tribune sim: {error}", file=sys.stderr)
        return EXIT_INVALID


async def _serve(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    if args.password is not None:
        options["password"] = args.password
    if args.pjlink_class is not None:
        if args.id != "pjlink":
            raise ValueError("--class applies to pjlink only")
        options["class_"] = args.pjlink_class
    running = await launch_simulator(
        args.id,
        tcp=args.tcp,
        pty=args.pty,
        link=args.link,
        baud=args.baud,
        auto_replug=2.0 / args.speed,
        speed=args.speed,
        **options,
    )
    faults = running.faults
    faults.drop, faults.garbage, faults.delay = args.drop, args.garbage, args.delay
    faults.hang_up_after, faults.busy = args.hang_up_after, args.busy
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if running.pty is not None:
            print(running.path, flush=True)
        if running.tcp is not None:
            print(f"listening on {running.host}:{running.port}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await running.aclose()
    return EXIT_OK
