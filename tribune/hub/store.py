"""The hub's storage: rooms, events (once per room and seq) and commands with per-room status.

`HubStorage` is the interface the rest of the hub uses; `HubStore` keeps it in one SQLite file
(WAL) on a thread of its own, like the room's `Store`, so no SQLite call blocks the event loop.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tribune.sqlite import SqliteThread, transaction

QUEUED, DELIVERED, DONE, FAILED, EXPIRED = "queued", "delivered", "done", "failed", "expired"
OPEN = (QUEUED, DELIVERED)  # no result yet
RESULTS = (DONE, FAILED, EXPIRED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'unknown', status_at REAL,
    last_seen REAL NOT NULL, revision INTEGER, state TEXT, state_at TEXT);
CREATE TABLE IF NOT EXISTS events (
    room TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, at TEXT,
    payload TEXT NOT NULL, received REAL NOT NULL, PRIMARY KEY (room, seq));
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, action TEXT NOT NULL, args TEXT NOT NULL, issued_by TEXT NOT NULL,
    deadline REAL NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS command_rooms (
    command TEXT NOT NULL, room TEXT NOT NULL, status TEXT NOT NULL, result TEXT,
    updated REAL NOT NULL, PRIMARY KEY (command, room));
CREATE INDEX IF NOT EXISTS command_rooms_open ON command_rooms (status);
"""


@dataclass(frozen=True, slots=True)
class HubCommand:
    """A command as issued: one id for all its rooms."""

    id: str
    action: str
    args: dict[str, Any]
    issued_by: str
    deadline: float  # Unix time


@dataclass(frozen=True, slots=True)
class Delivery:
    """One room's share of a command that has not been published yet."""

    command: HubCommand
    room: str


class HubStorage(ABC):
    """What the hub keeps; every method is a coroutine and safe to call from the event loop."""

    @abstractmethod
    async def open(self) -> None:
        """Make the storage ready."""

    @abstractmethod
    async def close(self) -> None:
        """Release it."""

    @abstractmethod
    async def set_status(self, room: str, status: str, at: float) -> None:
        """A room's `status` message (online/offline) arrived at `at`."""

    @abstractmethod
    async def set_state(self, room: str, revision: int, payload: dict[str, Any], at: float) -> bool:
        """Keep a room's `state` when its revision is higher than the stored one; True if kept."""

    @abstractmethod
    async def add_event(self, room: str, seq: int, payload: dict[str, Any], at: float) -> bool:
        """Keep an event once per (room, seq); True if it was new."""

    @abstractmethod
    async def rooms(self) -> list[dict[str, Any]]:
        """Every room seen, without snapshots, ordered by id."""

    @abstractmethod
    async def room(self, room: str, *, events: int = 50) -> dict[str, Any] | None:
        """One room with its snapshot and latest events; None when never seen."""

    @abstractmethod
    async def add_command(self, command: HubCommand, rooms: Sequence[str]) -> None:
        """Record a command as `queued` for each room."""

    @abstractmethod
    async def queued(self, limit: int = 100) -> list[Delivery]:
        """Deliveries still `queued` (not yet accepted by the broker), oldest first."""

    @abstractmethod
    async def mark_delivered(self, command_id: str, room: str) -> None:
        """The broker accepted the command for `room` (only moves `queued` on)."""

    @abstractmethod
    async def set_result(
        self, command_id: str, room: str, status: str, result: dict[str, Any], at: float
    ) -> bool:
        """A room's result for a command; False when the hub never sent it to that room."""

    @abstractmethod
    async def expire_overdue(self, before: float, at: float) -> list[tuple[str, str]]:
        """Mark `expired` every open delivery whose deadline is before `before`; the pairs."""

    @abstractmethod
    async def command(self, command_id: str) -> dict[str, Any] | None:
        """A command with each room's status and result; None when unknown."""


class HubStore(SqliteThread, HubStorage):
    """`HubStorage` in one SQLite file (WAL, `synchronous=NORMAL`), on its own thread."""

    SCHEMA = SCHEMA
    # The rooms hold the truth and re-send it (retained state, outbox): losing the last
    # moments before a power cut costs nothing, fsync per message would cost a lot.
    SYNCHRONOUS = "NORMAL"
    THREAD_NAME = "hub-store"

    # --- rooms -------------------------------------------------------------------------------

    async def set_status(self, room: str, status: str, at: float) -> None:
        await self._call(self._set_status, room, status, at)

    def _set_status(self, room: str, status: str, at: float) -> None:
        self._conn().execute(
            "INSERT INTO rooms (id, status, status_at, last_seen) VALUES (?,?,?,?) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
            "status_at = excluded.status_at, last_seen = excluded.last_seen",
            (room, status, at, at),
        )

    async def set_state(self, room: str, revision: int, payload: dict[str, Any], at: float) -> bool:
        return await self._call(self._set_state, room, revision, payload, at)

    def _set_state(self, room: str, revision: int, payload: dict[str, Any], at: float) -> bool:
        db = self._conn()
        text = json.dumps(payload, ensure_ascii=False)
        with transaction(db):
            db.execute(
                "INSERT INTO rooms (id, last_seen) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
                (room, at),
            )
            cur = db.execute(
                "UPDATE rooms SET revision = ?, state = ?, state_at = ? "
                "WHERE id = ? AND (revision IS NULL OR revision < ?)",
                (revision, text, payload.get("at"), room, revision),
            )
            return cur.rowcount == 1

    async def add_event(self, room: str, seq: int, payload: dict[str, Any], at: float) -> bool:
        return await self._call(self._add_event, room, seq, payload, at)

    def _add_event(self, room: str, seq: int, payload: dict[str, Any], at: float) -> bool:
        db = self._conn()
        with transaction(db):
            db.execute(
                "INSERT INTO rooms (id, last_seen) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
                (room, at),
            )
            cur = db.execute(
                "INSERT OR IGNORE INTO events (room, seq, type, at, payload, received) "
                "VALUES (?,?,?,?,?,?)",
                (
                    room,
                    seq,
                    str(payload.get("type", "")),
                    payload.get("at"),
                    json.dumps(payload, ensure_ascii=False),
                    at,
                ),
            )
            return cur.rowcount == 1

    async def rooms(self) -> list[dict[str, Any]]:
        return await self._call(self._rooms)

    def _rooms(self) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT id, status, status_at, last_seen, revision, state_at FROM rooms ORDER BY id"
        )
        return [_room_row(row) for row in rows]

    async def room(self, room: str, *, events: int = 50) -> dict[str, Any] | None:
        return await self._call(self._room, room, events)

    def _room(self, room: str, events: int) -> dict[str, Any] | None:
        db = self._conn()
        row = db.execute(
            "SELECT id, status, status_at, last_seen, revision, state_at, state "
            "FROM rooms WHERE id = ?",
            (room,),
        ).fetchone()
        if row is None:
            return None
        found = _room_row(row[:6])
        state = json.loads(row[6]) if row[6] else None
        found["snapshot"] = state.get("snapshot") if isinstance(state, dict) else None
        recent = db.execute(
            "SELECT payload FROM events WHERE room = ? ORDER BY seq DESC LIMIT ?", (room, events)
        )
        found["events"] = [json.loads(text) for (text,) in recent]
        return found

    # --- commands ----------------------------------------------------------------------------

    async def add_command(self, command: HubCommand, rooms: Sequence[str]) -> None:
        await self._call(self._add_command, command, list(rooms))

    def _add_command(self, command: HubCommand, rooms: list[str]) -> None:
        db = self._conn()
        now = time.time()
        with transaction(db):
            db.execute(
                "INSERT INTO commands (id, action, args, issued_by, deadline, created) "
                "VALUES (?,?,?,?,?,?)",
                (
                    command.id,
                    command.action,
                    json.dumps(command.args, ensure_ascii=False),
                    command.issued_by,
                    command.deadline,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO command_rooms (command, room, status, updated) VALUES (?,?,?,?)",
                [(command.id, room, QUEUED, now) for room in rooms],
            )

    async def queued(self, limit: int = 100) -> list[Delivery]:
        return await self._call(self._queued, limit)

    def _queued(self, limit: int) -> list[Delivery]:
        rows = self._conn().execute(
            "SELECT c.id, c.action, c.args, c.issued_by, c.deadline, r.room "
            "FROM command_rooms r JOIN commands c ON c.id = r.command "
            "WHERE r.status = ? ORDER BY c.created, r.room LIMIT ?",
            (QUEUED, limit),
        )
        return [
            Delivery(HubCommand(cid, action, json.loads(args), issued_by, deadline), room)
            for cid, action, args, issued_by, deadline, room in rows
        ]

    async def mark_delivered(self, command_id: str, room: str) -> None:
        await self._call(self._mark_delivered, command_id, room)

    def _mark_delivered(self, command_id: str, room: str) -> None:
        self._conn().execute(
            "UPDATE command_rooms SET status = ?, updated = ? "
            "WHERE command = ? AND room = ? AND status = ?",
            (DELIVERED, time.time(), command_id, room, QUEUED),
        )

    async def set_result(
        self, command_id: str, room: str, status: str, result: dict[str, Any], at: float
    ) -> bool:
        return await self._call(self._set_result, command_id, room, status, result, at)

    def _set_result(
        self, command_id: str, room: str, status: str, result: dict[str, Any], at: float
    ) -> bool:
        # The room's word is final, even over an `expired` the hub guessed from its own clock.
        cur = self._conn().execute(
            "UPDATE command_rooms SET status = ?, result = ?, updated = ? "
            "WHERE command = ? AND room = ?",
            (status, json.dumps(result, ensure_ascii=False), at, command_id, room),
        )
        return cur.rowcount == 1

    async def expire_overdue(self, before: float, at: float) -> list[tuple[str, str]]:
        return await self._call(self._expire_overdue, before, at)

    def _expire_overdue(self, before: float, at: float) -> list[tuple[str, str]]:
        db = self._conn()
        with transaction(db):
            rows = db.execute(
                "SELECT r.command, r.room FROM command_rooms r "
                "JOIN commands c ON c.id = r.command "
                "WHERE r.status IN (?, ?) AND c.deadline < ?",
                (*OPEN, before),
            ).fetchall()
            detail = json.dumps({"detail": "no result from the room by the deadline"})
            db.executemany(
                "UPDATE command_rooms SET status = ?, result = ?, updated = ? "
                "WHERE command = ? AND room = ? AND status IN (?, ?)",
                [(EXPIRED, detail, at, cid, room, *OPEN) for cid, room in rows],
            )
        return [(cid, room) for cid, room in rows]

    async def command(self, command_id: str) -> dict[str, Any] | None:
        return await self._call(self._command, command_id)

    def _command(self, command_id: str) -> dict[str, Any] | None:
        db = self._conn()
        row = db.execute(
            "SELECT id, action, args, issued_by, deadline, created FROM commands WHERE id = ?",
            (command_id,),
        ).fetchone()
        if row is None:
            return None
        rooms = db.execute(
            "SELECT room, status, result, updated FROM command_rooms "
            "WHERE command = ? ORDER BY room",
            (command_id,),
        )
        return {
            "id": row[0],
            "action": row[1],
            "args": json.loads(row[2]),
            "issued_by": row[3],
            "deadline": row[4],
            "created": row[5],
            "rooms": {
                room: {
                    "status": status,
                    "result": json.loads(result) if result else None,
                    "updated": updated,
                }
                for room, status, result, updated in rooms
            },
        }


def _room_row(row: Sequence[Any]) -> dict[str, Any]:
    room_id, status, status_at, last_seen, revision, state_at = row
    return {
        "id": room_id,
        "status": status,
        "status_at": status_at,
        "last_seen": last_seen,
        "revision": revision,
        "state_at": state_at,
    }
