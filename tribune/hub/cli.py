"""`tribune hub`: the hub service (store, MQTT link, REST API) until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_INVALID = 2


def add_hub_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `hub` subcommand."""
    parser = subparsers.add_parser(
        "hub",
        help="run the hub: every room's state and events, commands to rooms (REST API)",
        description="Subscribe to every room on the broker, store what they say, serve "
        "/api/v1 to loopback clients (no operator accounts yet). See docs/hub.md.",
    )
    parser.add_argument("--broker", required=True, help="mqtt://host:1883 or mqtts://host:8883")
    parser.add_argument("--port", type=int, default=8090, help="HTTP port (default 8090)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    parser.add_argument("--data-dir", default="/var/lib/tribune-hub", help="where hub.db lives")
    parser.set_defaults(handler=cmd_hub)


def cmd_hub(args: argparse.Namespace) -> int:
    """Run the hub."""
    from tribune.hub.service import parse_broker, run_hub

    try:
        parse_broker(args.broker)
    except ValueError as exc:
        sys.stdout.write(f"{exc}\n")
        return EXIT_INVALID
    # Like `serve`: warnings by default, -v for more.
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.getLogger().setLevel(level)
    return asyncio.run(run_hub(args.broker, args.port, Path(args.data_dir), args.host))
