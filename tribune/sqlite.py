"""SQLite owned by one thread: the event loop never waits on a database call.

`SqliteThread` is the base of the room's store and the hub's: one connection, opened, used and
closed on one worker thread; `_call` runs a function there; `transaction` wraps a write.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

T = TypeVar("T")


class SqliteThread:
    """One SQLite file (WAL) on its own thread; subclasses name the schema and the sync level."""

    SCHEMA: ClassVar[str] = ""
    SYNCHRONOUS: ClassVar[Literal["FULL", "NORMAL"]] = "FULL"
    THREAD_NAME: ClassVar[str] = "sqlite"
    # The page cache's bound in KiB; None keeps SQLite's (2000 KiB per connection).
    CACHE_KIB: ClassVar[int | None] = None

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.THREAD_NAME)
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Open (creating) the database file and its tables."""
        await self._call(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.SYNCHRONOUS}")
        db.execute("PRAGMA busy_timeout=5000")
        if self.CACHE_KIB is not None:
            db.execute(f"PRAGMA cache_size=-{int(self.CACHE_KIB)}")
        db.executescript(self.SCHEMA)
        self._after_open(db)
        self._db = db

    def _after_open(self, db: sqlite3.Connection) -> None:
        """Subclasses: anything to do once the tables exist."""

    async def close(self) -> None:
        """Close the database and its thread."""
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        return self._db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection; inside a
    transaction already, part of it (the outer one commits or rolls back everything)."""
    if db.in_transaction:
        yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
