"""`tribune hub`: the hub service (store, MQTT link, REST API, fleet page) until SIGINT or
SIGTERM; `tribune hub token create|list|revoke`: operators and their tokens."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tribune.errors import ConfigError

if TYPE_CHECKING:
    from tribune.hub.config import HubConfig

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_NOT_FOUND = 4

T = TypeVar("T")


def add_hub_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `hub` subcommand and its own subcommands."""
    parser = subparsers.add_parser(
        "hub",
        help="run the hub: every room's state and events, commands to rooms, the fleet page",
        description="Subscribe to every room on the broker, store what they say, serve the "
        "fleet page and /api/v1 (operator tokens). Settings from --config hub.toml; flags "
        "override it. See docs/hub.md.",
    )
    parser.add_argument("--config", help="hub.toml (see docs/hub.md)")
    parser.add_argument("--broker", help="mqtt://host:1883 or mqtts://host:8883")
    parser.add_argument("--port", type=int, help="HTTP port (default 8090)")
    parser.add_argument("--host", help="HTTP address (default 127.0.0.1)")
    parser.add_argument("--data-dir", help="where hub.db lives (default /var/lib/tribune-hub)")
    parser.set_defaults(handler=cmd_hub)

    sub = parser.add_subparsers(dest="hub_command", metavar="{token,publisher-key,push-profile}")
    token = sub.add_parser("token", help="operators' API tokens")
    tokens = token.add_subparsers(dest="token_command", metavar="{create,list,revoke}")
    token.set_defaults(handler=lambda _args: _usage(token))

    create = tokens.add_parser("create", help="create an operator; print the token once")
    create.add_argument("name", help="the operator, e.g. leyla or ops-baku")
    create.add_argument("--role", choices=("viewer", "operator", "admin"), default="viewer")
    create.set_defaults(handler=cmd_token_create)

    listing = tokens.add_parser("list", help="list operators (never tokens)")
    listing.set_defaults(handler=cmd_token_list)

    revoke = tokens.add_parser("revoke", help="revoke an operator's token")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_token_revoke)

    key = sub.add_parser(
        "publisher-key",
        help="print the hub's public key, for the rooms' [sync] hub_key_file",
        description="The hub signs every command it sends (and each pushed profile) with its "
        "publisher key, made on first use in the data dir; a room with this key in [sync] "
        "hub_key_file runs only commands signed by it.",
    )
    key.set_defaults(handler=cmd_publisher_key)

    for each in (create, listing, revoke, key):
        each.add_argument("--data-dir", help="the hub's data dir (default /var/lib/tribune-hub)")
        each.add_argument("--config", help="hub.toml, for its data_dir")

    from tribune.hub.push import add_push_parser

    add_push_parser(sub)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return EXIT_INVALID


def _load(args: argparse.Namespace) -> HubConfig:
    """The hub config: the file (if any) with the flags over it (`ConfigError` when bad)."""
    from pydantic import ValidationError

    from tribune.hub.config import HubConfig, load_hub_config

    data = load_hub_config(Path(args.config)).model_dump() if args.config else {}
    hub = data.setdefault("hub", {})
    for flag in ("host", "port", "data_dir"):
        if (value := getattr(args, flag, None)) is not None:
            hub[flag] = value
    if args.broker is not None:
        data.setdefault("broker", {})["url"] = args.broker
    if "broker" not in data:
        raise ConfigError("give --broker URL or --config hub.toml")
    try:
        return HubConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{field}: {message}") from None


def cmd_hub(args: argparse.Namespace) -> int:
    """Run the hub."""
    from tribune.hub.config import broker_link
    from tribune.hub.service import run_hub

    try:
        config = _load(args)
        base = Path(args.config).parent if args.config else Path.cwd()
        link = broker_link(config.broker, base)
    except ConfigError as exc:
        sys.stderr.write(f"tribune hub: {exc}\n")
        return EXIT_INVALID
    # Like `serve`: warnings by default, -v for more.
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.getLogger().setLevel(level)
    return asyncio.run(run_hub(config, link))


def _data_dir(args: argparse.Namespace) -> Path:
    from tribune.hub.config import HubSection, load_hub_config

    if args.data_dir:
        return Path(args.data_dir)
    if args.config:
        return Path(load_hub_config(Path(args.config)).hub.data_dir)
    return Path(HubSection().data_dir)


def _with_store(args: argparse.Namespace, work: Callable[[Any], Awaitable[T]]) -> T:
    from tribune.hub.store import HubStore

    path = _data_dir(args) / "hub.db"

    async def run() -> T:
        store = HubStore(path)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def cmd_token_create(args: argparse.Namespace) -> int:
    """Create an operator and print their token (only this once)."""
    from tribune.hub.auth import create_operator

    try:
        token = _with_store(args, lambda store: create_operator(store, args.name, args.role))
    except (ValueError, ConfigError) as exc:
        sys.stderr.write(f"tribune hub token create: {exc}\n")
        return EXIT_INVALID
    sys.stderr.write(
        f"operator {args.name} ({args.role}) created; the token is shown only now — keep it:\n"
    )
    sys.stdout.write(token + "\n")
    return EXIT_OK


def cmd_publisher_key(args: argparse.Namespace) -> int:
    """Print the public half of the hub's publisher key."""
    from tribune.hub.publisher import Publisher

    try:
        publisher = Publisher.load_or_create(_data_dir(args))
    except (OSError, ValueError, ConfigError) as exc:
        sys.stderr.write(f"tribune hub publisher-key: {exc}\n")
        return EXIT_INVALID
    sys.stdout.write(publisher.public_pem())
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    """List operators."""
    import time

    try:
        operators = _with_store(args, lambda store: store.operators())
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_INVALID
    for op in operators:
        used = op["last_used"]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(used)) if used else "never"
        sys.stdout.write(f"{op['name']:<24} {op['role']:<9} last used {when}\n")
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke an operator's token."""
    try:
        removed = _with_store(args, lambda store: store.remove_operator(args.name))
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_INVALID
    if not removed:
        sys.stderr.write(f"tribune hub token revoke: no operator {args.name!r}\n")
        return EXIT_NOT_FOUND
    sys.stderr.write(f"operator {args.name}: token revoked\n")
    return EXIT_OK
