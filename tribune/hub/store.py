"""The hub's storage: rooms, events (once per room and seq), commands with per-room status,
alerts and help requests taken from the events, and operators (token hashes only).

`HubStorage` is the interface the rest of the hub uses; `HubStore` keeps it in one SQLite file
(WAL) on a thread of its own, like the room's `Store`, so no SQLite call blocks the event loop.
"""

from __future__ import annotations

import json
import sqlite3
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
    last_seen REAL NOT NULL, revision INTEGER, state TEXT, state_at TEXT, summary TEXT);
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
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, room TEXT NOT NULL, code TEXT NOT NULL, device TEXT NOT NULL,
    active INTEGER NOT NULL, seq INTEGER NOT NULL, raised_at TEXT, updated_at TEXT,
    data TEXT NOT NULL, acked_by TEXT, acked_at REAL, UNIQUE (room, code, device));
CREATE TABLE IF NOT EXISTS help_requests (
    room TEXT NOT NULL, audit_id INTEGER NOT NULL, at TEXT, who TEXT, actor TEXT, note TEXT,
    status TEXT NOT NULL DEFAULT 'open', acked_by TEXT, acked_at REAL,
    PRIMARY KEY (room, audit_id));
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL, last_used REAL);
"""

ROLES = ("viewer", "operator", "admin")  # each may do what the ones before it may


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


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message from a room, checked: `kind` is status, state, event or result."""

    kind: str
    room: str
    payload: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class Operator:
    """Someone with a hub token: what they may do is their role."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """True when this operator's role includes `role`."""
        return ROLES.index(self.role) >= ROLES.index(role)


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

    async def take_in(self, messages: Sequence[Incoming]) -> list[bool]:
        """Store messages from rooms, in order; for each, whether it changed anything (a
        storage may do it in one transaction: the hub hands over what arrived together)."""
        kept = []
        for message in messages:
            kept.append(await self._take_one(message))
        return kept

    async def _take_one(self, message: Incoming) -> bool:
        data, room, at = message.payload, message.room, message.at
        if message.kind == "status":
            await self.set_status(room, data["status"], at)
            return True
        if message.kind == "state":
            return await self.set_state(room, data["revision"], data, at)
        if message.kind == "event":
            return await self.add_event(room, data["seq"], data, at)
        return await self.set_result(data["id"], room, data["status"], data, at)

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

    @abstractmethod
    async def commands(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest commands, newest first, each with a count of rooms per status."""

    @abstractmethod
    async def events(
        self, room: str, kind: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[dict[str, Any]]:
        """A room's events (of one `type`), newest first, with seq below `before`."""

    @abstractmethod
    async def room_ids(self, site: str | None = None) -> list[str]:
        """Ids of the rooms seen (of one site), ordered."""

    # --- alerts and help requests, taken from the rooms' events by `add_event` ---------------

    @abstractmethod
    async def alerts(self, which: str = "open", site: str | None = None) -> list[dict[str, Any]]:
        """`open` (active, not acknowledged), `active` or `all` alerts, newest first."""

    @abstractmethod
    async def ack_alert(self, alert_id: int, by: str, at: float) -> bool:
        """An operator saw the alert; False when there is no such alert."""

    @abstractmethod
    async def help_requests(
        self, which: str = "open", site: str | None = None
    ) -> list[dict[str, Any]]:
        """`open` or `all` help requests, newest first."""

    @abstractmethod
    async def ack_help(self, room: str, audit_id: int, by: str, at: float) -> bool:
        """Someone is on the way; False when there is no such open request."""

    # --- operators ---------------------------------------------------------------------------

    @abstractmethod
    async def add_operator(self, name: str, role: str, token_sha256: str, at: float) -> None:
        """A new operator (`ValueError` when the name is taken)."""

    @abstractmethod
    async def operator(self, token_sha256: str) -> Operator | None:
        """Whose token this is; None when nobody's."""

    @abstractmethod
    async def operators(self) -> list[dict[str, Any]]:
        """Every operator (name, role, created, last used), never a token."""

    @abstractmethod
    async def remove_operator(self, name: str) -> bool:
        """Revoke an operator's token; False when there was no such operator."""


class HubStore(SqliteThread, HubStorage):
    """`HubStorage` in one SQLite file (WAL, `synchronous=NORMAL`), on its own thread."""

    SCHEMA = SCHEMA
    # The rooms hold the truth and re-send it (retained state, outbox): losing the last
    # moments before a power cut costs nothing, fsync per message would cost a lot.
    SYNCHRONOUS = "NORMAL"
    THREAD_NAME = "hub-store"

    # --- rooms -------------------------------------------------------------------------------

    async def take_in(self, messages: Sequence[Incoming]) -> list[bool]:
        return await self._call(self._take_in, list(messages))

    def _take_in(self, messages: list[Incoming]) -> list[bool]:
        kept: list[bool] = []
        with transaction(self._conn()):  # one commit for all that arrived together
            for message in messages:
                data, room, at = message.payload, message.room, message.at
                if message.kind == "status":
                    self._set_status(room, data["status"], at)
                    kept.append(True)
                elif message.kind == "state":
                    kept.append(self._set_state(room, data["revision"], data, at))
                elif message.kind == "event":
                    kept.append(self._add_event(room, data["seq"], data, at))
                else:
                    kept.append(self._set_result(data["id"], room, data["status"], data, at))
        return kept

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
            summary = json.dumps(summarize(payload), ensure_ascii=False)
            cur = db.execute(
                "UPDATE rooms SET revision = ?, state = ?, state_at = ?, summary = ? "
                "WHERE id = ? AND (revision IS NULL OR revision < ?)",
                (revision, text, payload.get("at"), summary, room, revision),
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
            if cur.rowcount != 1:
                return False  # redelivered: already taken in
            data = payload.get("data")
            if isinstance(data, dict):
                if payload.get("type") == "alert":
                    self._take_alert(db, room, seq, data, payload.get("at"))
                elif payload.get("type") == "help":
                    self._take_help(db, room, data)
            return True

    @staticmethod
    def _take_alert(
        db: sqlite3.Connection, room: str, seq: int, data: dict[str, Any], at: Any
    ) -> None:
        # Events can arrive out of order after a reconnect: a later seq has the last word.
        # Raised again after being cleared, the alert needs a new acknowledgement.
        db.execute(
            "INSERT INTO alerts (room, code, device, active, seq, raised_at, updated_at, data) "
            "VALUES (:room, :code, :device, :active, :seq, :at, :at, :data) "
            "ON CONFLICT (room, code, device) DO UPDATE SET "
            "raised_at = iif(excluded.active AND NOT alerts.active, :at, alerts.raised_at), "
            "acked_by = iif(excluded.active AND NOT alerts.active, NULL, alerts.acked_by), "
            "acked_at = iif(excluded.active AND NOT alerts.active, NULL, alerts.acked_at), "
            "active = excluded.active, seq = excluded.seq, updated_at = excluded.updated_at, "
            "data = excluded.data WHERE excluded.seq > alerts.seq",
            {
                "room": room,
                "code": str(data.get("code", "")),
                "device": str(data.get("device") or ""),
                "active": 1 if data.get("active") else 0,
                "seq": seq,
                "at": at,
                "data": json.dumps(data, ensure_ascii=False),
            },
        )

    @staticmethod
    def _take_help(db: sqlite3.Connection, room: str, entry: dict[str, Any]) -> None:
        audit_id = entry.get("id")
        if not isinstance(audit_id, int):
            return
        detail = entry.get("detail")
        note = detail.get("note") if isinstance(detail, dict) else None
        db.execute(
            "INSERT OR IGNORE INTO help_requests (room, audit_id, at, who, actor, note) "
            "VALUES (?,?,?,?,?,?)",
            (room, audit_id, entry.get("at"), entry.get("who"), entry.get("actor"), note),
        )

    async def rooms(self) -> list[dict[str, Any]]:
        return await self._call(self._rooms)

    def _rooms(self) -> list[dict[str, Any]]:
        db = self._conn()
        alerts = dict(
            db.execute(
                "SELECT room, count(*) FROM alerts WHERE active AND acked_by IS NULL GROUP BY room"
            ).fetchall()
        )
        helps = dict(
            db.execute(
                "SELECT room, count(*) FROM help_requests WHERE status = 'open' GROUP BY room"
            ).fetchall()
        )
        rows = db.execute(
            "SELECT id, status, status_at, last_seen, revision, state_at, summary "
            "FROM rooms ORDER BY id"
        )
        found = []
        for row in rows:
            room = _room_row(row[:6])
            room.update(json.loads(row[6]) if row[6] else {"name": None, "devices": {}})
            room["open_alerts"] = alerts.get(room["id"], 0)
            room["open_help_requests"] = helps.get(room["id"], 0)
            found.append(room)
        return found

    async def events(
        self, room: str, kind: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[dict[str, Any]]:
        return await self._call(self._events, room, kind, limit, before)

    def _events(
        self, room: str, kind: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT payload FROM events WHERE room = :room "
            "AND (:kind IS NULL OR type = :kind) AND (:before IS NULL OR seq < :before) "
            "ORDER BY seq DESC LIMIT :limit",
            {"room": room, "kind": kind, "before": before, "limit": limit},
        )
        return [json.loads(text) for (text,) in rows]

    async def room_ids(self, site: str | None = None) -> list[str]:
        return await self._call(self._room_ids, site)

    def _room_ids(self, site: str | None) -> list[str]:
        rows = self._conn().execute(
            "SELECT id FROM rooms "
            "WHERE :site IS NULL OR substr(id, 1, length(:site) + 1) = :site || '/' ORDER BY id",
            {"site": site},
        )
        return [room for (room,) in rows]

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

    async def commands(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self._call(self._commands, limit)

    def _commands(self, limit: int) -> list[dict[str, Any]]:
        db = self._conn()
        found = _dicts(
            db.execute(
                "SELECT id, action, args, issued_by, deadline, created FROM commands "
                "ORDER BY created DESC LIMIT ?",
                (limit,),
            )
        )
        for command in found:
            command["args"] = json.loads(command["args"])
            command["statuses"] = dict(
                db.execute(
                    "SELECT status, count(*) FROM command_rooms WHERE command = ? GROUP BY status",
                    (command["id"],),
                ).fetchall()
            )
        return found

    # --- alerts and help requests ------------------------------------------------------------

    async def alerts(self, which: str = "open", site: str | None = None) -> list[dict[str, Any]]:
        return await self._call(self._alerts, which, site)

    def _alerts(self, which: str, site: str | None) -> list[dict[str, Any]]:
        if which not in ("open", "active", "all"):
            raise ValueError(f"which {which!r}: want open, active or all")
        rows = _dicts(
            self._conn().execute(
                "SELECT id, room, code, device, active, seq, raised_at, updated_at, data, "
                "acked_by, acked_at FROM alerts "
                "WHERE (:which = 'all' OR (active AND (:which = 'active' OR acked_by IS NULL))) "
                "AND (:site IS NULL OR substr(room, 1, length(:site) + 1) = :site || '/') "
                "ORDER BY updated_at DESC, id DESC",
                {"which": which, "site": site},
            )
        )
        for row in rows:
            row["device"] = row["device"] or None
            row["active"] = bool(row["active"])
            row["data"] = json.loads(row["data"])
        return rows

    async def ack_alert(self, alert_id: int, by: str, at: float) -> bool:
        return await self._call(self._ack_alert, alert_id, by, at)

    def _ack_alert(self, alert_id: int, by: str, at: float) -> bool:
        cur = self._conn().execute(
            "UPDATE alerts SET acked_by = ?, acked_at = ? WHERE id = ?", (by, at, alert_id)
        )
        return cur.rowcount == 1

    async def help_requests(
        self, which: str = "open", site: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._call(self._help_requests, which, site)

    def _help_requests(self, which: str, site: str | None) -> list[dict[str, Any]]:
        if which not in ("open", "all"):
            raise ValueError(f"which {which!r}: want open or all")
        return _dicts(
            self._conn().execute(
                "SELECT room, audit_id AS id, at, who, actor, note, status, acked_by, acked_at "
                "FROM help_requests WHERE (:which = 'all' OR status = 'open') "
                "AND (:site IS NULL OR substr(room, 1, length(:site) + 1) = :site || '/') "
                "ORDER BY at DESC, room",
                {"which": which, "site": site},
            )
        )

    async def ack_help(self, room: str, audit_id: int, by: str, at: float) -> bool:
        return await self._call(self._ack_help, room, audit_id, by, at)

    def _ack_help(self, room: str, audit_id: int, by: str, at: float) -> bool:
        cur = self._conn().execute(
            "UPDATE help_requests SET status = 'acknowledged', acked_by = ?, acked_at = ? "
            "WHERE room = ? AND audit_id = ? AND status = 'open'",
            (by, at, room, audit_id),
        )
        return cur.rowcount == 1

    # --- operators ---------------------------------------------------------------------------

    async def add_operator(self, name: str, role: str, token_sha256: str, at: float) -> None:
        if role not in ROLES:
            raise ValueError(f"role {role!r}: want one of {', '.join(ROLES)}")
        await self._call(self._add_operator, name, role, token_sha256, at)

    def _add_operator(self, name: str, role: str, token_sha256: str, at: float) -> None:
        try:
            self._conn().execute(
                "INSERT INTO operators (name, role, token_sha256, created) VALUES (?,?,?,?)",
                (name, role, token_sha256, at),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"operator {name!r} exists (revoke the old token first)") from None

    async def operator(self, token_sha256: str) -> Operator | None:
        return await self._call(self._operator, token_sha256)

    def _operator(self, token_sha256: str) -> Operator | None:
        db = self._conn()
        row = db.execute(
            "SELECT name, role, last_used FROM operators WHERE token_sha256 = ?", (token_sha256,)
        ).fetchone()
        if row is None:
            return None
        now = time.time()
        if row[2] is None or now - row[2] > 60:  # a write a minute at most, not one a request
            db.execute("UPDATE operators SET last_used = ? WHERE name = ?", (now, row[0]))
        return Operator(row[0], row[1])

    async def operators(self) -> list[dict[str, Any]]:
        return await self._call(self._operators)

    def _operators(self) -> list[dict[str, Any]]:
        return _dicts(
            self._conn().execute(
                "SELECT name, role, created, last_used FROM operators ORDER BY name"
            )
        )

    async def remove_operator(self, name: str) -> bool:
        return await self._call(self._remove_operator, name)

    def _remove_operator(self, name: str) -> bool:
        cur = self._conn().execute("DELETE FROM operators WHERE name = ?", (name,))
        return cur.rowcount == 1

    def _after_open(self, db: sqlite3.Connection) -> None:
        columns = {row[1] for row in db.execute("PRAGMA table_info(rooms)")}
        if "summary" not in columns:  # a database from before room summaries
            db.execute("ALTER TABLE rooms ADD COLUMN summary TEXT")


SUMMARY_READINGS = ("power", "input", "lamp_hours", "filter_hours", "video_mute", "model")


def summarize(state: dict[str, Any]) -> dict[str, Any]:
    """What the fleet page shows of a room's `state` message: devices' power, input, hours."""
    snapshot = state.get("snapshot")
    snap: dict[str, Any] = snapshot if isinstance(snapshot, dict) else {}
    devices: dict[str, Any] = {}
    raw_devices = snap.get("devices")
    for device_id, device in (raw_devices if isinstance(raw_devices, dict) else {}).items():
        if not isinstance(device, dict):
            continue
        reported = device.get("reported")
        readings = reported if isinstance(reported, dict) else {}
        health = device.get("health")
        summary: dict[str, Any] = {
            "name": device.get("name"),
            "kind": device.get("kind"),
            "online": bool(device.get("online")),
            "health": health.get("status") if isinstance(health, dict) else None,
        }
        for name in SUMMARY_READINGS:
            reading = readings.get(name)
            if isinstance(reading, dict) and "value" in reading:
                summary[name] = reading["value"]
        devices[str(device_id)] = summary
    return {
        "name": snap.get("name"),
        "source": snap.get("source"),
        "converged": snap.get("converged"),
        "devices": devices,
    }


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


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
