"""The service's one SQLite file: desired and reported state, audit log, counters, schedule runs.

WAL with `synchronous=FULL`: a transaction that returned is on disk, so an intent acknowledged
to a caller survives `kill -9` or a power cut. One thread owns the connection; the event loop
talks to it through a single-worker executor, so no SQLite call ever blocks the loop.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tribune.sqlite import SqliteThread, transaction

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS desired (
    device TEXT NOT NULL, capability TEXT NOT NULL, value TEXT NOT NULL,
    intent INTEGER, updated REAL NOT NULL, PRIMARY KEY (device, capability));
CREATE TABLE IF NOT EXISTS reported (
    device TEXT NOT NULL, capability TEXT NOT NULL, value TEXT NOT NULL,
    at REAL NOT NULL, source TEXT NOT NULL, PRIMARY KEY (device, capability));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
    actor TEXT, action TEXT NOT NULL, detail TEXT NOT NULL, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS schedule_runs (entry TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, seq INTEGER,
    payload TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, received REAL NOT NULL, action TEXT NOT NULL,
    status TEXT, result TEXT);
-- Which (audit entry, result) were queued for the hub. Pruned to the outbox's age each time
-- the link starts; in between it grows by one small row per result, as the audit log does.
CREATE TABLE IF NOT EXISTS sync_audit (
    id INTEGER NOT NULL, result TEXT NOT NULL, PRIMARY KEY (id, result));
"""
COMMANDS_KEPT_SECONDS = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who asked what, and what came of it."""

    id: int
    at: float
    who: str  # panel | button | api | hub | schedule | cli | system
    actor: str | None  # token name, button id, schedule id...
    action: str
    detail: dict[str, Any]
    result: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "at": self.at,
            "who": self.who,
            "actor": self.actor,
            "action": self.action,
            "detail": self.detail,
            "result": self.result,
        }


class Store(SqliteThread):
    """The room's store; every method runs on the store's own thread."""

    SCHEMA = SCHEMA
    SYNCHRONOUS = "FULL"
    THREAD_NAME = "store"
    # The room's database is small and the kernel caches its file; SQLite's default page cache
    # (2000 KiB) fills a page at a time as the outbox and the audit log move through the file,
    # which over an hour of use reads as RSS creeping by 1-2 MB (bench/soak.py measured it).
    # 128 KiB (32 pages) is full within minutes; a page it does not hold comes back from the
    # kernel's cache (bench/api_latency.py: tap → wire p99 3.3 ms with it).
    CACHE_KIB = 128

    def _after_open(self, db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        # The first audit entry the sync link answers for: 1 in a new data dir; in one from
        # before the link kept `sync_audit`, the next one (its history is not sent again).
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) "
            "SELECT 'sync.audit_from', COALESCE(MAX(id), 0) + 1 FROM audit"
        )

    # --- intents: desired state and its audit entry, in one transaction -----------------------

    async def record_intent(
        self,
        who: str,
        actor: str | None,
        action: str,
        detail: dict[str, Any],
        desired: dict[str, dict[str, Any]],
    ) -> AuditEntry:
        """Audit an intent and store the desired state it sets; durable when this returns."""
        return await self._call(self._record_intent, who, actor, action, detail, desired)

    def _record_intent(
        self,
        who: str,
        actor: str | None,
        action: str,
        detail: dict[str, Any],
        desired: dict[str, dict[str, Any]],
    ) -> AuditEntry:
        db = self._conn()
        now = time.time()
        with transaction(db):
            cur = db.execute(
                "INSERT INTO audit (at, who, actor, action, detail, result) VALUES (?,?,?,?,?,?)",
                (now, who, actor, action, json.dumps(detail, ensure_ascii=False), "accepted"),
            )
            intent = cur.lastrowid
            for device, caps in desired.items():
                for capability, value in caps.items():
                    if value is None:  # no longer wanted (blank and freeze after class end)
                        db.execute(
                            "DELETE FROM desired WHERE device = ? AND capability = ?",
                            (device, capability),
                        )
                        continue
                    db.execute(
                        "INSERT INTO desired (device, capability, value, intent, updated) "
                        "VALUES (?,?,?,?,?) ON CONFLICT (device, capability) DO UPDATE SET "
                        "value=excluded.value, intent=excluded.intent, updated=excluded.updated",
                        (device, capability, json.dumps(value), intent, now),
                    )
        assert intent is not None
        return AuditEntry(intent, now, who, actor, action, detail, "accepted")

    async def audit(
        self, who: str, actor: str | None, action: str, detail: dict[str, Any], result: str
    ) -> AuditEntry:
        """Add an audit entry that sets no desired state (an action, a refusal, a fault)."""
        return await self._call(self._audit, who, actor, action, detail, result)

    def _audit(
        self, who: str, actor: str | None, action: str, detail: dict[str, Any], result: str
    ) -> AuditEntry:
        db = self._conn()
        now = time.time()
        with transaction(db):
            cur = db.execute(
                "INSERT INTO audit (at, who, actor, action, detail, result) VALUES (?,?,?,?,?,?)",
                (now, who, actor, action, json.dumps(detail, ensure_ascii=False), result),
            )
        assert cur.lastrowid is not None
        return AuditEntry(cur.lastrowid, now, who, actor, action, detail, result)

    async def set_result(self, entry_id: int, result: str) -> AuditEntry | None:
        """Record what came of an intent or action; the entry as it now reads (None: no such)."""
        return await self._call(self._set_result, entry_id, result)

    def _set_result(self, entry_id: int, result: str) -> AuditEntry | None:
        db = self._conn()
        with transaction(db):
            db.execute("UPDATE audit SET result=? WHERE id=?", (result, entry_id))
            row = db.execute(
                "SELECT id, at, who, actor, action, detail, result FROM audit WHERE id=?",
                (entry_id,),
            ).fetchone()
        if row is None:
            return None
        return AuditEntry(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6])

    async def audit_tail(self, limit: int = 200, before: int | None = None) -> list[AuditEntry]:
        """The latest entries, newest first."""
        return await self._call(self._audit_tail, limit, before)

    def _audit_tail(self, limit: int, before: int | None) -> list[AuditEntry]:
        query = "SELECT id, at, who, actor, action, detail, result FROM audit"
        args: tuple[Any, ...] = ()
        if before is not None:
            query += " WHERE id < ?"
            args = (before,)
        rows = self._conn().execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    async def desired(self) -> dict[str, dict[str, Any]]:
        """The stored desired state, device -> capability -> value."""
        return await self._call(self._desired)

    def _desired(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for device, capability, value in self._conn().execute(
            "SELECT device, capability, value FROM desired ORDER BY device, capability"
        ):
            result.setdefault(device, {})[capability] = json.loads(value)
        return result

    # --- small named values (the room's current source) ---------------------------------

    async def get_meta(self, key: str) -> str | None:
        """A stored named value."""
        return await self._call(self._get_meta, key)

    def _get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        """Store a named value."""
        await self._call(self._set_meta, key, value)

    def _set_meta(self, key: str, value: str) -> None:
        db = self._conn()
        with transaction(db):
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # --- reported state ---------------------------------------------------------------------

    async def save_reported(
        self, device: str, capability: str, value: Any, at: float, source: str
    ) -> None:
        """Remember the last reported value (shown after a restart until re-read)."""
        await self._call(self._save_reported, device, capability, value, at, source)

    def _save_reported(
        self, device: str, capability: str, value: Any, at: float, source: str
    ) -> None:
        db = self._conn()
        with transaction(db):
            db.execute(
                "INSERT INTO reported (device, capability, value, at, source) VALUES (?,?,?,?,?) "
                "ON CONFLICT (device, capability) DO UPDATE SET value=excluded.value, "
                "at=excluded.at, source=excluded.source",
                (device, capability, json.dumps(value), at, source),
            )

    async def reported(self) -> dict[str, dict[str, tuple[Any, float, str]]]:
        """The last reported values: device -> capability -> (value, at, source)."""
        return await self._call(self._reported)

    def _reported(self) -> dict[str, dict[str, tuple[Any, float, str]]]:
        result: dict[str, dict[str, tuple[Any, float, str]]] = {}
        for device, capability, value, at, source in self._conn().execute(
            "SELECT device, capability, value, at, source FROM reported"
        ):
            result.setdefault(device, {})[capability] = (json.loads(value), at, source)
        return result

    # --- counters ---------------------------------------------------------------------------

    async def add_counters(self, amounts: dict[str, float]) -> None:
        """Add to usage counters (projector on-seconds, seconds per source)."""
        if amounts:
            await self._call(self._add_counters, amounts)

    def _add_counters(self, amounts: dict[str, float]) -> None:
        db = self._conn()
        with transaction(db):
            for name, amount in amounts.items():
                db.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (name, amount),
                )

    async def counters(self) -> dict[str, float]:
        """Every usage counter."""
        return await self._call(self._counters)

    def _counters(self) -> dict[str, float]:
        rows = self._conn().execute("SELECT name, value FROM counters ORDER BY name")
        return dict(rows)

    # --- schedule runs (the scheduler's LastRunStore) ---------------------------------------

    async def get(self, entry_id: str) -> datetime | None:
        """When a schedule entry last ran."""
        return await self._call(self._get_run, entry_id)

    def _get_run(self, entry_id: str) -> datetime | None:
        row = (
            self._conn()
            .execute("SELECT at FROM schedule_runs WHERE entry = ?", (entry_id,))
            .fetchone()
        )
        return datetime.fromisoformat(row[0]) if row else None

    async def set(self, entry_id: str, when: datetime) -> None:
        """Record that a schedule entry ran (for its due time `when`)."""
        await self._call(self._set_run, entry_id, when)

    def _set_run(self, entry_id: str, when: datetime) -> None:
        db = self._conn()
        with transaction(db):
            db.execute(
                "INSERT INTO schedule_runs (entry, at) VALUES (?, ?) "
                "ON CONFLICT (entry) DO UPDATE SET at = excluded.at",
                (entry_id, when.isoformat()),
            )

    async def bump_meta(self, key: str) -> int:
        """Add one to a stored number (0 when absent) and return it; durable when this returns."""
        return await self._call(self._bump_meta, key)

    def _bump_meta(self, key: str) -> int:
        db = self._conn()
        with transaction(db):
            return _bump(db, key)

    # --- sync outbox: messages for the hub, kept until the broker acknowledged them ---------

    async def outbox_add(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        numbered: bool,
        max_rows: int,
        max_age: float,
        audit: tuple[int, str] | None = None,
    ) -> tuple[int | None, int]:
        """Queue a message (numbered: with the next event `seq`); returns (seq, rows dropped).

        The bounds are kept in the same transaction: rows older than `max_age` seconds and the
        oldest beyond `max_rows` are dropped, and counted in the `sync.outbox.dropped` counter.
        `audit` = (entry id, result): an audit entry's word, queued once — (None, 0) if it was.
        """
        return await self._call(
            self._outbox_add, topic, payload, numbered, max_rows, max_age, audit
        )

    def _outbox_add(
        self,
        topic: str,
        payload: dict[str, Any],
        numbered: bool,
        max_rows: int,
        max_age: float,
        audit: tuple[int, str] | None,
    ) -> tuple[int | None, int]:
        db = self._conn()
        now = time.time()
        with transaction(db):
            if audit is not None:
                new = db.execute(
                    "INSERT OR IGNORE INTO sync_audit (id, result) VALUES (?, ?)", audit
                ).rowcount
                if not new:
                    return None, 0
            seq = _bump(db, "sync.event_seq") if numbered else None
            body = {**payload, "seq": seq} if numbered else payload
            db.execute(
                "INSERT INTO outbox (topic, seq, payload, created) VALUES (?,?,?,?)",
                (topic, seq, json.dumps(body, ensure_ascii=False), now),
            )
            dropped = db.execute("DELETE FROM outbox WHERE created < ?", (now - max_age,)).rowcount
            dropped += db.execute(
                "DELETE FROM outbox WHERE id NOT IN "
                "(SELECT id FROM outbox ORDER BY id DESC LIMIT ?)",
                (max_rows,),
            ).rowcount
            if dropped:
                db.execute(
                    "INSERT INTO counters (name, value) VALUES ('sync.outbox.dropped', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (dropped,),
                )
        return seq, dropped

    async def audit_unqueued(self, since: float) -> list[AuditEntry]:
        """Audit entries made since `since` (Unix time) whose present result was never queued
        for the hub (the entry itself, or its later `done`/`converged`), oldest first; marks of
        older entries are forgotten (they are past the outbox's age)."""
        return await self._call(self._audit_unqueued, since)

    def _audit_unqueued(self, since: float) -> list[AuditEntry]:
        db = self._conn()
        with transaction(db):
            first = db.execute("SELECT MIN(id) FROM audit WHERE at >= ?", (since,)).fetchone()[0]
            if first is None:
                db.execute("DELETE FROM sync_audit")
                return []
            db.execute("DELETE FROM sync_audit WHERE id < ?", (first,))
            rows = db.execute(
                "SELECT id, at, who, actor, action, detail, result FROM audit "
                "WHERE id >= MAX(?, (SELECT CAST(value AS INTEGER) FROM meta "
                "WHERE key = 'sync.audit_from')) "
                "AND NOT EXISTS (SELECT 1 FROM sync_audit s "
                "WHERE s.id = audit.id AND s.result = audit.result) ORDER BY id",
                (first,),
            ).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    async def outbox_peek(self, limit: int) -> list[tuple[int, str, str]]:
        """The oldest queued messages: (row id, topic, JSON payload)."""
        return await self._call(self._outbox_peek, limit)

    def _outbox_peek(self, limit: int) -> list[tuple[int, str, str]]:
        rows = self._conn().execute(
            "SELECT id, topic, payload FROM outbox ORDER BY id LIMIT ?", (limit,)
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def outbox_remove(self, ids: list[int]) -> None:
        """Forget messages the broker acknowledged."""
        if ids:
            await self._call(self._outbox_remove, ids)

    def _outbox_remove(self, ids: list[int]) -> None:
        db = self._conn()
        with transaction(db):
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    async def outbox_count(self) -> int:
        """How many messages wait for the broker."""
        return await self._call(self._outbox_count)

    def _outbox_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    # --- hub commands: recorded before they run, so a redelivered one runs once ------------

    async def command_begin(self, command_id: str, action: str) -> tuple[str | None, str | None]:
        """Record a command id; (None, None) when new, else its stored (status, result JSON)."""
        return await self._call(self._command_begin, command_id, action)

    def _command_begin(self, command_id: str, action: str) -> tuple[str | None, str | None]:
        db = self._conn()
        now = time.time()
        with transaction(db):
            row = db.execute(
                "SELECT status, result FROM commands WHERE id = ?", (command_id,)
            ).fetchone()
            if row is not None:
                return (row[0] or "running", row[1])
            db.execute("DELETE FROM commands WHERE received < ?", (now - COMMANDS_KEPT_SECONDS,))
            db.execute(
                "INSERT INTO commands (id, received, action) VALUES (?,?,?)",
                (command_id, now, action),
            )
        return (None, None)

    async def command_stored(self, command_id: str) -> str | None:
        """The stored result (JSON) of a command id already run, without recording anything."""
        return await self._call(self._command_stored, command_id)

    def _command_stored(self, command_id: str) -> str | None:
        row = (
            self._conn()
            .execute("SELECT result FROM commands WHERE id = ?", (command_id,))
            .fetchone()
        )
        return None if row is None or row[0] is None else str(row[0])

    async def command_finish(self, command_id: str, status: str, result: dict[str, Any]) -> None:
        """Store what came of a command (sent again when the command is delivered again)."""
        await self._call(self._command_finish, command_id, status, result)

    def _command_finish(self, command_id: str, status: str, result: dict[str, Any]) -> None:
        db = self._conn()
        with transaction(db):
            db.execute(
                "UPDATE commands SET status = ?, result = ? WHERE id = ?",
                (status, json.dumps(result, ensure_ascii=False), command_id),
            )


def _bump(db: sqlite3.Connection, key: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    value = int(row[0]) + 1 if row else 1
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )
    return value
