"""Hub commands: parsed strictly, recorded before they run (once), refused after their deadline.

A command is `{"id", "action", "args", "issued_by", "deadline", "room", "signature"}`; its result
is `{"id", "status": "done"|"failed"|"expired", "detail", "at"}` on `cmd/result`. A room with the
hub's key runs only commands signed with it (`tribune.sync.signing`).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from tribune.config import ScheduleConfig
from tribune.errors import TribuneError
from tribune.room import Room
from tribune.scheduler import SceneTarget, ScheduleEntry, parse_when
from tribune.sync.signing import command_message, verify
from tribune.sync.topics import iso, utc_now

log = logging.getLogger(__name__)

ACTIONS = ("scene.activate", "desired.patch", "device.action", "schedule.set", "profile.push")
MAX_PAYLOAD = 64 * 1024
MAX_DEPTH = 32  # args nest a few levels; deeper would only exhaust the recursion limit later
# No MQTT wildcards (`+`, `#`) and no `/`: an id may become part of a topic on the hub side.
COMMAND_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
ISSUER = re.compile(r"^[^\x00-\x1f]{1,128}$")

ScheduleHandler = Callable[[list[ScheduleEntry]], Awaitable[None]]


class CommandFailedError(Exception):
    """The command ran and did not succeed; `detail` says how, per part."""

    def __init__(self, detail: dict[str, Any]) -> None:
        super().__init__("failed")
        self.detail = detail


class MalformedCommandError(ValueError):
    """The payload is not a command this room can run; `command_id` when one was readable."""

    def __init__(self, message: str, command_id: str | None = None) -> None:
        super().__init__(message)
        self.command_id = command_id


@dataclass(frozen=True, slots=True)
class Command:
    """One command from the hub."""

    id: str
    action: str
    args: dict[str, Any]
    issued_by: str
    deadline: datetime
    signature: str | None = None  # the hub's, over `message`
    message: bytes = b""  # what the hub signed: the payload but its signature, canonical


def parse_command(payload: bytes, room_id: str) -> Command:
    """The command in a `cmd` payload; `MalformedCommandError` says what is wrong."""
    if len(payload) > MAX_PAYLOAD:
        raise MalformedCommandError(f"payload of {len(payload)} bytes (limit {MAX_PAYLOAD})")
    try:
        data = json.loads(payload, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedCommandError(f"not JSON: {exc}") from None
    except RecursionError:  # `[[[[...` a few thousand deep
        raise MalformedCommandError(f"not JSON: nested deeper than {MAX_DEPTH} levels") from None
    if nested_deeper_than(data, MAX_DEPTH):
        raise MalformedCommandError(f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict):
        raise MalformedCommandError("want a JSON object")
    raw_id = data.get("id")
    if not isinstance(raw_id, str) or not COMMAND_ID.match(raw_id):
        shown = raw_id[:128] if isinstance(raw_id, str) else None
        raise MalformedCommandError(
            "id: want 1-128 of A-Z a-z 0-9 . _ : - (no MQTT wildcards, no '/')", shown
        )
    unknown = set(data) - {"id", "action", "args", "issued_by", "deadline", "room", "signature"}
    if unknown:
        raise MalformedCommandError(f"unknown keys: {', '.join(sorted(unknown))}", raw_id)
    if "room" in data and data["room"] != room_id:
        raise MalformedCommandError(f"room: this is {room_id}, not {data['room']!r}", raw_id)
    action = data.get("action")
    if action not in ACTIONS:
        raise MalformedCommandError(f"action: want one of {', '.join(ACTIONS)}", raw_id)
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise MalformedCommandError("args: want an object", raw_id)
    issued_by = data.get("issued_by")
    if not isinstance(issued_by, str) or not ISSUER.match(issued_by):
        raise MalformedCommandError("issued_by: want a non-empty string", raw_id)
    deadline_text = data.get("deadline")
    if not isinstance(deadline_text, str):
        raise MalformedCommandError(
            "deadline: want ISO 8601 UTC, e.g. 2025-01-01T22:05:00Z", raw_id
        )
    try:
        deadline = datetime.fromisoformat(deadline_text)
    except ValueError:
        raise MalformedCommandError(
            f"deadline: not ISO 8601: {deadline_text[:40]!r}", raw_id
        ) from None
    if deadline.utcoffset() is None:
        raise MalformedCommandError("deadline: give the zone (Z for UTC)", raw_id)
    signature = data.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise MalformedCommandError("signature: want base64 text", raw_id)
    return Command(
        raw_id,
        str(action),
        args,
        issued_by,
        deadline.astimezone(UTC),
        signature,
        command_message(data),
    )


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), nor part of a signed command."""
    raise ValueError(f"{name} is not a JSON number")


def nested_deeper_than(data: Any, limit: int) -> bool:
    """Whether JSON `data` nests lists and objects deeper than `limit` (without recursing)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= limit:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return False


def result(command_id: str | None, status: str, detail: Any) -> dict[str, Any]:
    """A `cmd/result` payload."""
    return {"id": command_id, "status": status, "detail": detail, "at": utc_now()}


class CommandRunner:
    """Runs hub commands on the room: once per id, never after the deadline."""

    def __init__(
        self,
        room: Room,
        *,
        schedule: ScheduleHandler | None = None,
        flasher: Any = None,
        hub_key: Any = None,
        signed_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.room = room
        self.schedule = schedule
        self.flasher = flasher  # a ProfileFlasher, for `profile.push`
        self.hub_key = hub_key  # the hub's Ed25519 public key: commands must be signed with it
        # Set with `hub_key_file`: every command must be signed, and none runs while the key
        # could not be read (a room configured to check does not fall back to trusting).
        self.signed_only = signed_only or hub_key is not None
        self.clock = clock

    async def handle(
        self, payload: bytes, recorded: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """The result of one `cmd` payload (run, refused, or the stored result of a repeat).
        `recorded` is called once the command's id is stored (or it is refused as malformed):
        from then on a second delivery cannot run it again, so the broker may forget it."""
        try:
            command = parse_command(payload, self.room.id)
        except MalformedCommandError as exc:
            log.warning("hub command refused: %s", exc)
            if recorded is not None:
                recorded()
            return result(exc.command_id, "failed", f"malformed: {exc}")
        refusal = self._refuse_unsigned(command)
        if refusal is not None:
            # Not recorded: a forged copy must not stop the hub's own command of that id; and
            # a copy of one that ran gets its stored result, not a `failed` to overwrite it.
            log.warning("hub command %s (%s) refused: %s", command.id, command.action, refusal)
            if recorded is not None:
                recorded()
            stored_result = await self.room.store.command_stored(command.id)
            if stored_result is not None:
                earlier: dict[str, Any] = json.loads(stored_result)
                return earlier
            return result(command.id, "failed", refusal)
        status, stored = await self.room.store.command_begin(command.id, command.action)
        if recorded is not None:
            recorded()
        if status is not None:
            log.info("hub command %s delivered again: not run again", command.id)
            if stored is not None:
                previous: dict[str, Any] = json.loads(stored)
                return previous
            answer = result(command.id, "failed", "interrupted by a restart; not run again")
            await self.room.store.command_finish(command.id, "failed", answer)
            return answer
        answer = await self._run(command)
        await self.room.store.command_finish(command.id, answer["status"], answer)
        return answer

    def _refuse_unsigned(self, command: Command) -> str | None:
        """Why a command must not run for want of the hub's signature (None: it may run)."""
        if not self.signed_only:
            return None
        if self.hub_key is None:
            return "refused: the hub's key (sync.hub_key_file) could not be read; not run"
        if command.signature is None:
            return "refused: not signed by the hub (this room has its key); not run"
        if not verify(self.hub_key, command.signature, command.message):
            return "refused: signature is not the hub's; not run"
        return None

    async def _run(self, command: Command) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.clock(), UTC)
        if now >= command.deadline:
            late = now - command.deadline
            entry = await self.room.store.audit(
                "hub",
                command.issued_by,
                command.action,
                {"command": command.id, "args": command.args, "deadline": iso(command.deadline)},
                "expired",
            )
            self.room.bus.publish("audit", entry.as_dict())
            log.warning("hub command %s expired %s ago: not run", command.id, _span(late))
            return result(command.id, "expired", f"deadline {iso(command.deadline)} passed")
        try:
            detail = await self._dispatch(command)
        except CommandFailedError as exc:
            return result(command.id, "failed", exc.detail)
        except (TribuneError, ValueError, TypeError, KeyError) as exc:
            return result(command.id, "failed", str(exc) or type(exc).__name__)
        return result(command.id, "done", detail)

    async def _dispatch(self, command: Command) -> dict[str, Any]:
        args, who, actor = command.args, "hub", command.issued_by
        if command.action == "scene.activate":
            entry = await self.room.activate_scene(_text(args, "scene"), who=who, actor=actor)
        elif command.action == "desired.patch":
            desired = args.get("desired")
            if not isinstance(desired, Mapping) or not all(
                isinstance(v, Mapping) for v in desired.values()
            ):
                raise ValueError("args.desired: want {device: {capability: value}}")
            entry = await self.room.apply(desired, who=who, actor=actor)
        elif command.action == "device.action":
            params = args.get("params", {})
            if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
                raise ValueError("args.params: want {name: text}")
            entry = await self.room.device_action(
                _text(args, "device"), _text(args, "action"), params, who=who, actor=actor
            )
        elif command.action == "profile.push":
            return await self._push_profile(command)
        else:
            return await self._set_schedule(command)
        return {"audit_id": entry.id, "result": "done" if entry.result == "running" else "accepted"}

    async def _push_profile(self, command: Command) -> dict[str, Any]:
        from tribune.sync.profile_push import check_push, run_push

        text = check_push(command.args, self.hub_key, command.id, iso(command.deadline))
        flashed, detail = await run_push(
            self.flasher, self.room, command.args, text, command.issued_by
        )
        if not flashed:
            raise CommandFailedError(detail)
        return detail

    async def _set_schedule(self, command: Command) -> dict[str, Any]:
        if self.schedule is None:
            raise ValueError("this room runs no scheduler")
        raw = command.args.get("entries")
        if not isinstance(raw, list):
            raise ValueError("args.entries: want a list of schedule entries")
        entries: list[ScheduleEntry] = []
        for i, item in enumerate(raw):
            try:
                config = ScheduleConfig.model_validate(item)
                recurrence = parse_when(config.when)
            except (ValidationError, ValueError) as exc:
                raise ValueError(f"args.entries.{i}: {exc}") from None
            if config.scene not in self.room.config.scenes:
                raise ValueError(f"args.entries.{i}.scene: no scene {config.scene!r}")
            entries.append(
                ScheduleEntry(
                    id=config.id,
                    recurrence=recurrence,
                    when=config.when,
                    target=SceneTarget(config.scene),
                    grace=timedelta(minutes=config.grace_minutes),
                    enabled=config.enabled,
                )
            )
        if len({e.id for e in entries}) != len(entries):
            raise ValueError("args.entries: an id is used twice")
        await self.schedule(entries)
        entry = await self.room.store.audit(
            "hub", command.issued_by, "schedule.set", {"entries": raw}, "done"
        )
        self.room.bus.publish("audit", entry.as_dict())
        return {"audit_id": entry.id, "entries": len(entries)}


def _text(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"args.{key}: want text")
    return value


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds}s"
