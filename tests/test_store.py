"""The SQLite store: intents are durable as they return; counters add up; WAL and FULL sync."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from tribune.store import Store


async def test_intent_and_desired_state_survive_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    await store.open()
    entry = await store.record_intent(
        "panel", None, "scene.activate", {"scene": "class-start"}, {"projector": {"power": "on"}}
    )
    await store.record_intent(
        "api", "token:api", "desired.patch", {}, {"projector": {"power": "off", "volume": 40}}
    )
    await store.set_result(entry.id, "converged")
    # No close: a crashed process does not close its database either.
    again = Store(tmp_path / "t.db")
    await again.open()
    assert await again.desired() == {"projector": {"power": "off", "volume": 40}}
    tail = await again.audit_tail()
    assert [e.action for e in tail] == ["desired.patch", "scene.activate"]
    assert tail[1].result == "converged"
    assert tail[0].actor == "token:api"
    assert [e.id for e in await again.audit_tail(before=tail[0].id)] == [tail[1].id]
    await again.close()
    await store.close()


async def test_pragmas(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    await store.open()

    def pragma(name: str) -> object:
        return store._conn().execute(f"PRAGMA {name}").fetchone()[0]

    # Per connection, so asked on the store's own: FULL (2), a bounded page cache in KiB.
    assert await store._call(pragma, "synchronous") == 2
    assert await store._call(pragma, "cache_size") == -Store.CACHE_KIB
    await store.close()
    db = sqlite3.connect(tmp_path / "t.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


async def test_counters_reported_and_schedule_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    await store.open()
    await store.add_counters({"device.projector.on_seconds": 60, "source.laptop.seconds": 30})
    await store.add_counters({"device.projector.on_seconds": 15})
    assert await store.counters() == {
        "device.projector.on_seconds": 75,
        "source.laptop.seconds": 30,
    }
    await store.save_reported("projector", "power", "on", 1.5, "poll")
    await store.save_reported("projector", "power", "cooling", 2.5, "reply")
    assert await store.reported() == {"projector": {"power": ("cooling", 2.5, "reply")}}
    when = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    assert await store.get("nightly-off") is None
    await store.set("nightly-off", when)
    assert await store.get("nightly-off") == when
    await store.close()
