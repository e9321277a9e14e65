"""The soak's own checks can fail: each invariant of `bench/soak.py` fed a history that breaks
it, and one that does not."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from soak_checks import Sample, check_events, rss_settling, rss_slope
from soak_room import ROOM_ID, CountingHubStore

from tribune.hub.store import Incoming


def _room(seq: int, audit: dict[int, tuple[str, str, str]], pending: list[int]) -> dict[str, Any]:
    return {"event_seq": seq, "outbox_seqs": pending, "audit": audit, "dropped": 0}


def _audit_event(seq: int, entry: int, result: str) -> tuple[int, str, dict[str, Any]]:
    return seq, "audit", {"seq": seq, "type": "audit", "data": {"id": entry, "result": result}}


def test_events_all_there_once_pass() -> None:
    audit = {1: ("panel", "scene.activate", "converged")}
    hub = [_audit_event(1, 1, "accepted"), _audit_event(2, 1, "converged")]
    found = check_events(_room(2, audit, []), hub)
    assert found["events_lost"] == 0
    assert found["events_duplicated"] == 0
    assert found["audit_missing_in_hub"] == 0


def test_a_missing_seq_is_lost_unless_still_in_the_outbox() -> None:
    hub = [_audit_event(1, 1, "accepted"), _audit_event(3, 2, "accepted")]
    audit = {1: ("panel", "x", "accepted"), 2: ("panel", "x", "accepted")}
    assert check_events(_room(3, audit, []), hub)["events_lost"] == 1
    assert check_events(_room(3, audit, []), hub)["events_missing_seqs"] == [2]
    assert check_events(_room(3, audit, [2]), hub)["events_lost"] == 0


def test_an_entrys_word_under_two_seqs_is_a_duplicate() -> None:
    hub = [_audit_event(1, 1, "accepted"), _audit_event(2, 1, "accepted")]
    found = check_events(_room(2, {1: ("panel", "x", "accepted")}, []), hub)
    assert found["events_duplicated"] == 1


def test_an_entrys_later_result_the_hub_never_heard_is_missing() -> None:
    hub = [_audit_event(1, 1, "running")]
    found = check_events(_room(1, {1: ("api", "device.action", "done")}, []), hub)
    assert found["audit_missing_in_hub"] == 1
    assert found["audit_missing_in_hub_ids"] == [1]


async def test_the_counting_hub_store_sees_a_seq_sent_twice_with_other_content(
    tmp_path: Path,
) -> None:
    store = CountingHubStore(tmp_path / "hub.db")
    await store.open()
    try:
        first = {"seq": 7, "type": "change", "at": "x", "room": ROOM_ID, "data": {"value": "on"}}
        again = {**first, "data": {"value": "off"}}
        await store.take_in([Incoming("event", ROOM_ID, first, 1.0)])
        await store.take_in([Incoming("event", ROOM_ID, first, 2.0)])
        await store.take_in([Incoming("event", ROOM_ID, again, 3.0)])
    finally:
        await store.close()
    assert store.deliveries[7] == 3
    assert len(store.digests[7]) == 2  # a conflict: the hub kept the first, lost the other


def _life(pid: int, start: float, rss: list[int], every: float = 2.0) -> list[Sample]:
    return [Sample(pid, i * every, start + i * every, kb, 50, 5000) for i, kb in enumerate(rss)]


def test_rss_slope_finds_a_leak_and_calls_a_flat_life_flat() -> None:
    flat = _life(1, 0.0, [70_000 + (i % 3) * 50 for i in range(200)])
    slope, stderr, used = rss_slope(flat, warmup=60.0, replay=2000)
    assert slope is not None
    assert stderr is not None
    assert abs(slope) < 20
    assert used == 170  # the first minute left out
    leaking = _life(2, 0.0, [70_000 + i * 10 for i in range(200)])  # 10 kB per 2 s
    slope, _, _ = rss_slope(leaking, warmup=60.0, replay=2000)
    assert slope is not None
    assert abs(slope - 300) < 1


def test_rss_slope_error_widens_for_a_step_not_for_a_page_a_minute() -> None:
    # One 64 kB step in ten minutes: neighbouring samples share their residual, so the error
    # is several times what independent samples would give (0.23 kB/min).
    step = _life(1, 0.0, [70_000 + (64 if i >= 150 else 0) for i in range(330)])
    slope, stderr, _ = rss_slope(step, warmup=60.0, replay=2000)
    assert slope is not None
    assert stderr is not None
    assert stderr > 1.0
    # A page every 30 s, steadily: a leak, told from zero by many errors.
    pages = _life(2, 0.0, [70_000 + 4 * (i // 15) for i in range(330)])
    slope, stderr, _ = rss_slope(pages, warmup=60.0, replay=2000)
    assert slope is not None
    assert stderr is not None
    assert abs(slope - 8.0) < 0.5
    assert slope > 100 * stderr


def test_rss_settling_tells_a_leak_from_memory_settling() -> None:
    leak = _life(1, 0.0, [70_000 + 4 * (i // 15) for i in range(930)])  # 31 minutes
    found = rss_settling(leak, warmup=60.0, replay=2000)
    assert found is not None
    assert found["minutes"] == 30.0
    assert 220 <= found["growth_kb"] <= 240  # medians of the first and last minute
    assert all(abs(third - 8.0) < 1 for third in found["slope_by_third_kb_per_min"])
    assert found["anon_growth_kb"] is None  # readings without RssAnon
    # New highs ever rarer (at 1, 2, 4, 8, 16 minutes): fast first, level last.
    steps = [30, 60, 120, 240, 480]
    settling = _life(2, 0.0, [70_000 + 4 * sum(i >= s for s in steps) for i in range(930)])
    found = rss_settling(settling, warmup=60.0, replay=2000)
    assert found is not None
    first, _, last = found["slope_by_third_kb_per_min"]
    assert last == 0.0
    assert first > 0.5
    # The longest life is the one measured; nothing measured, nothing said.
    assert rss_settling(settling + _life(3, 2000.0, [70_000] * 100), 60.0, 2000) == found
    assert rss_settling(_life(4, 0.0, [70_000] * 20), 60.0, 2000) is None


def test_rss_settling_says_how_much_was_the_heap() -> None:
    # The mapped files hold still at 23 MB: every kB gained is anonymous memory.
    leak = _life(1, 0.0, [70_000 + 4 * (i // 15) for i in range(930)])
    found = rss_settling([replace(s, anon_kb=s.rss_kb - 23_000) for s in leak], 60.0, 2000)
    assert found is not None
    assert found["anon_growth_kb"] == found["growth_kb"]
    # A library's pages read in for the first time: RSS grows, the heap does not.
    found = rss_settling([replace(s, anon_kb=47_000) for s in leak], 60.0, 2000)
    assert found is not None
    assert found["growth_kb"] > 200
    assert found["anon_growth_kb"] == 0.0
