"""`tribune hub push-profile FILE`: send a device profile to many rooms through the hub's API
and follow each room's flash to the end, with a progress bar.

Exit codes: 0 every room flashed; 2 the profile or the request is invalid; 3 the token is
refused; 4 a room failed or expired, or the hub is unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INVALID, EXIT_AUTH, EXIT_FAILED = 0, 2, 3, 4
FINAL = ("done", "failed", "expired")


def add_push_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `hub push-profile`."""
    push = sub.add_parser(
        "push-profile",
        help="flash a device profile into many rooms through the hub",
        description="Each room checks the hub's signature and the SHA-256, probes the device "
        "with the profile, and installs it only if the device answers as the profile says "
        "(unless --force); a room that refuses keeps its old profile. See docs/technician.md.",
    )
    push.add_argument("file", help="the profile (YAML)")
    which = push.add_mutually_exclusive_group(required=True)
    which.add_argument("--site", help="every room of this centre")
    which.add_argument("--rooms", help="site/room ids, comma-separated")
    which.add_argument("--model", help="every room with a device reporting this model")
    which.add_argument("--all", action="store_true", help="every room")
    push.add_argument("--device", help="the device id in each room (default: see docs)")
    push.add_argument("--force", action="store_true", help="install even if the probe fails")
    push.add_argument("--ttl", type=float, default=900, help="seconds rooms have (default 900)")
    push.add_argument("--url", default="http://127.0.0.1:8090", help="the hub")
    push.add_argument("--token", help="operator token (default: $TRIBUNE_HUB_TOKEN)")
    push.add_argument("--json", action="store_true", help="print the final status as JSON")
    push.add_argument("--quiet", action="store_true", help="no progress bar")
    push.set_defaults(handler=cmd_push_profile)


class HubError(Exception):
    """The hub refused or could not be reached; `code` is the exit code to use."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _call(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        code = EXIT_AUTH if exc.code in (401, 403) else EXIT_INVALID
        if exc.code == 404 or exc.code >= 500:
            code = EXIT_FAILED
        raise HubError(code, f"{exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise HubError(EXIT_FAILED, f"hub {url} unreachable: {exc}") from None


def _bar(statuses: dict[str, str], width: int = 30) -> str:
    total = len(statuses) or 1
    counts = {s: sum(1 for v in statuses.values() if v == s) for s in set(statuses.values())}
    final = sum(counts.get(s, 0) for s in FINAL)
    filled = round(width * final / total)
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"[{'#' * filled}{'.' * (width - filled)}] {final}/{total} ({shown})"


def cmd_push_profile(args: argparse.Namespace) -> int:
    """Push, then follow until every room is final."""
    token = args.token or os.environ.get("TRIBUNE_HUB_TOKEN")
    if not token:
        sys.stderr.write("push-profile: give --token or set TRIBUNE_HUB_TOKEN\n")
        return EXIT_AUTH
    if not args.url.startswith(("http://", "https://")):
        sys.stderr.write(f"push-profile: --url {args.url!r}: want http(s)://host:port\n")
        return EXIT_INVALID
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"{path}: cannot read: {exc}\n")
        return EXIT_INVALID
    if args.site:
        selector: dict[str, Any] = {"site": args.site}
    elif args.rooms:
        selector = {"rooms": [r.strip() for r in args.rooms.split(",") if r.strip()]}
    elif args.model:
        selector = {"model": args.model}
    else:
        selector = {"all": True}
    push_args: dict[str, Any] = {"profile": text, "filename": path.name, "force": args.force}
    if args.device:
        push_args["device"] = args.device
    if args.model:
        push_args["model"] = args.model
    base = args.url.rstrip("/") + "/api/v1"
    body = {"action": "profile.push", "args": push_args, "ttl_s": args.ttl, "selector": selector}
    tty = sys.stderr.isatty() and not args.quiet
    try:
        sent = _call(f"{base}/commands", token, "POST", body)
        command_id = sent["id"]
        if not args.quiet:
            sys.stderr.write(f"pushed {path.name} to {len(sent['rooms'])} room(s): {command_id}\n")
        shown = ""
        while True:
            found = _call(f"{base}/commands/{command_id}", token)
            statuses = {room: entry["status"] for room, entry in found["rooms"].items()}
            line = _bar(statuses)
            if tty:
                sys.stderr.write("\r" + line)
            elif not args.quiet and line != shown:
                sys.stderr.write(line + "\n")
            shown = line
            if all(status in FINAL for status in statuses.values()):
                break
            time.sleep(0.5)
    except HubError as exc:
        sys.stderr.write(f"push-profile: {exc}\n")
        return exc.code
    if tty:
        sys.stderr.write("\n")
    failed = 0
    for room, entry in found["rooms"].items():
        if entry["status"] != "done":
            failed += 1
        if args.json:
            continue
        detail = (entry.get("result") or {}).get("detail")
        sys.stdout.write(f"{room}: {entry['status']}{_why(detail)}\n")
    if args.json:
        sys.stdout.write(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    return EXIT_FAILED if failed else EXIT_OK


def _why(detail: Any) -> str:
    """One line on what each device did, or why the room refused."""
    if isinstance(detail, dict) and isinstance(detail.get("devices"), dict):
        parts = []
        for device, outcome in detail["devices"].items():
            status = outcome.get("status")
            if status == "flashed":
                parts.append(f"{device} now {outcome.get('profile')} v{outcome.get('version')}")
            else:
                parts.append(f"{device} {status}: {outcome.get('reason')}")
        return " — " + "; ".join(parts)
    return f" — {detail}" if detail else ""
