"""The scheduler on a fake clock: due runs, missed runs and grace, clock jumps, updates, idling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tribune.scheduler import (
    FakeClock,
    MemoryLastRunStore,
    SceneTarget,
    ScheduleEntry,
    Scheduler,
    SystemClock,
    parse_when,
)

BAKU = ZoneInfo("Asia/Baku")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR, DAY = 3600.0, 86400.0


def baku(text: str) -> datetime:
    """A Baku wall time; 2024-03-04 is a Monday."""
    return datetime.fromisoformat(text).replace(tzinfo=BAKU)


def entry(
    id: str = "nightly-off",
    when: str = "weekdays 22:00",
    scene: str = "class-end",
    grace_minutes: int = 30,
    enabled: bool = True,
) -> ScheduleEntry:
    return ScheduleEntry(
        id=id,
        recurrence=parse_when(when),
        when=when,
        target=SceneTarget(scene),
        grace=timedelta(minutes=grace_minutes),
        enabled=enabled,
    )


class Room:
    """Runs recorded as (entry id, due time in UTC); optionally a hook per run."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []
        self.hook: Callable[[ScheduleEntry, datetime], Awaitable[None]] | None = None

    async def run(self, entry: ScheduleEntry, due: datetime) -> None:
        assert due.tzinfo is not None
        self.runs.append((entry.id, due.astimezone(UTC)))
        if self.hook is not None:
            await self.hook(entry, due)


@asynccontextmanager
async def running(
    entries: list[ScheduleEntry],
    clock: FakeClock,
    store: MemoryLastRunStore,
    room: Room,
    tz: ZoneInfo = BAKU,
) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(entries, tz, room.run, store, clock)
    task = asyncio.create_task(scheduler.run_forever())
    try:
        yield scheduler
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


async def test_sleeps_once_until_the_next_due_time_and_runs_it() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:00")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room):
        assert await clock.next_sleep() == HOUR
        clock.advance(timedelta(hours=1))
        assert await clock.next_sleep() == DAY  # Monday -> Tuesday 22:00
        assert room.runs == [("nightly-off", utc(baku("2024-03-04 22:00")))]
    assert clock.sleeps == [HOUR, DAY]


async def test_idle_is_one_sleep_per_due_time() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:00")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room):
        assert await clock.next_sleep() == HOUR
        for _ in range(5):  # Monday to Friday
            clock.advance(timedelta(seconds=clock.sleeps[-1]))
            await clock.next_sleep()
    assert clock.sleeps == [HOUR, DAY, DAY, DAY, DAY, 3 * DAY]  # Friday -> Monday
    assert len(room.runs) == 5


async def test_a_run_missed_while_down_runs_on_start_within_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "tribune.scheduler")
    store = MemoryLastRunStore({"nightly-off": baku("2024-03-01 22:00")})  # Friday's run
    clock, room = FakeClock(baku("2024-03-04 22:12")), Room()
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
    assert room.runs == [("nightly-off", utc(baku("2024-03-04 22:00")))]
    assert store.values["nightly-off"] == baku("2024-03-04 22:00")
    assert (
        "schedule nightly-off: running scene class-end "
        "(due 22:00 Asia/Baku, 12 min late, within the grace)" in caplog.messages
    )


async def test_a_run_missed_beyond_grace_is_skipped_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    morning = entry("morning-on", "weekdays 08:00", "class-start")
    store = MemoryLastRunStore({"morning-on": baku("2024-03-01 08:00")})
    clock, room = FakeClock(baku("2024-03-04 11:00")), Room()
    async with running([morning], clock, store, room):
        assert await clock.next_sleep() == 21 * HOUR
    assert room.runs == []
    assert "missed morning-on at 08:00 by 3 h, beyond the 30 min grace; skipped" in caplog.messages
    # Settled: a second restart does not say it again.
    assert store.values["morning-on"] == baku("2024-03-04 08:00")
    caplog.clear()
    async with running([morning], clock, store, room):
        await clock.next_sleep()
    assert not [m for m in caplog.messages if "missed" in m]


async def test_an_entry_never_run_owes_nothing_from_before_it_was_first_seen() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 22:10")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room):
        assert await clock.next_sleep() == DAY - 10 * 60
    assert room.runs == []
    assert store.values["nightly-off"] == baku("2024-03-04 22:10")


async def test_an_entry_never_run_catches_up_a_run_missed_after_it_was_first_seen() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:00")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
    clock.set(baku("2024-03-04 22:20"))  # down from 21:00 to 22:20
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
    assert room.runs == [("nightly-off", utc(baku("2024-03-04 22:00")))]


async def test_never_twice_for_one_due_time_across_a_restart() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:59")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
        clock.advance(timedelta(minutes=1))
        await clock.next_sleep()
    clock.advance(timedelta(minutes=5))
    async with running([entry()], clock, store, room):
        assert await clock.next_sleep() == DAY - 5 * 60
    assert len(room.runs) == 1


async def test_the_run_is_recorded_before_it_starts() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:59")), MemoryLastRunStore(), Room()
    recorded: list[datetime | None] = []

    async def crash(entry: ScheduleEntry, due: datetime) -> None:
        recorded.append(await store.get(entry.id))

    room.hook = crash
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
        clock.advance(timedelta(minutes=1))
        await clock.next_sleep()
    assert recorded == [baku("2024-03-04 22:00")]


async def test_clock_jump_forward_runs_the_latest_due_time_once() -> None:
    every_ten = entry("ten", "*/10 * * * *", grace_minutes=30)
    clock, store, room = FakeClock(baku("2024-03-04 12:05")), MemoryLastRunStore(), Room()
    async with running([every_ten], clock, store, room):
        assert await clock.next_sleep() == 5 * 60
        clock.advance(timedelta(minutes=47))  # the PC wakes from sleep at 12:52
        assert await clock.next_sleep() == 8 * 60
    assert room.runs == [("ten", utc(baku("2024-03-04 12:50")))]


async def test_clock_jump_forward_beyond_grace_runs_nothing() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 12:00")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
        clock.set(baku("2024-03-05 07:00"))  # asleep all night
        assert await clock.next_sleep() == 15 * HOUR
    assert room.runs == []


async def test_clock_stepped_back_while_asleep_does_not_run_again() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:59")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
        clock.advance(timedelta(minutes=1))
        assert await clock.next_sleep() == DAY
        clock.set(baku("2024-03-04 21:30"))  # NTP step back by 30 min
        assert await clock.next_sleep() == DAY + 30 * 60  # re-planned: Tuesday, not 22:00
        clock.set(baku("2024-03-04 22:00"))
        await asyncio.sleep(0.01)
    assert len(room.runs) == 1


async def test_clock_set_back_during_a_run_does_not_run_again() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:59")), MemoryLastRunStore(), Room()

    async def ntp_steps_back(entry: ScheduleEntry, due: datetime) -> None:
        clock.set(baku("2024-03-04 21:30"))

    room.hook = ntp_steps_back
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
        clock.advance(timedelta(minutes=1))
        # From 21:30 to Tuesday 22:00, not to 22:00 again today.
        assert await clock.next_sleep() == DAY + 30 * 60
        room.hook = None
        clock.set(baku("2024-03-04 22:00"))
        await asyncio.sleep(0.01)
        clock.set(baku("2024-03-05 22:00"))
        assert await clock.next_sleep() == DAY
    assert [utc(due) for _, due in room.runs] == [
        utc(baku("2024-03-04 22:00")),
        utc(baku("2024-03-05 22:00")),
    ]


async def test_a_last_run_far_in_the_future_is_distrusted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Ran under a clock two days fast; the clock has since been corrected.
    store = MemoryLastRunStore({"nightly-off": baku("2024-03-06 22:00")})
    clock, room = FakeClock(baku("2024-03-04 21:00")), Room()
    async with running([entry()], clock, store, room):
        assert await clock.next_sleep() == HOUR
        clock.advance(timedelta(hours=1))
        await clock.next_sleep()
    assert room.runs == [("nightly-off", utc(baku("2024-03-04 22:00")))]
    assert (
        "schedule nightly-off: last run recorded at 2024-03-06 22:00, 2 d 1 h ahead of the "
        "clock; counting from now" in caplog.messages
    )


async def test_a_clock_corrected_far_back_does_not_silence_an_entry() -> None:
    clock, store, room = FakeClock(baku("2024-03-06 21:59")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
        clock.advance(timedelta(minutes=1))  # runs "Wednesday" 22:00 under a wrong clock
        assert await clock.next_sleep() == DAY
        clock.set(baku("2024-03-04 21:00"))  # NTP: it is Monday
        assert await clock.next_sleep() == HOUR  # not Thursday
        clock.advance(timedelta(hours=1))
        await clock.next_sleep()
    assert len(room.runs) == 2
    assert room.runs[-1] == ("nightly-off", utc(baku("2024-03-04 22:00")))


async def test_a_store_that_cannot_be_read_counts_from_now() -> None:
    class Unreadable(MemoryLastRunStore):
        async def get(self, entry_id: str) -> datetime | None:
            raise OSError("database is locked")

    clock, room = FakeClock(baku("2024-03-04 22:10")), Room()
    async with running([entry()], clock, Unreadable(), room):
        assert await clock.next_sleep() == DAY - 10 * 60
    assert room.runs == []


async def test_a_failing_run_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:00")), MemoryLastRunStore(), Room()

    async def projector_unplugged(entry: ScheduleEntry, due: datetime) -> None:
        raise RuntimeError("epson-1 offline")

    room.hook = projector_unplugged
    async with running([entry()], clock, store, room):
        await clock.next_sleep()
        clock.advance(timedelta(hours=1))
        assert await clock.next_sleep() == DAY
        clock.advance(timedelta(days=1))
        assert await clock.next_sleep() == DAY
    assert len(room.runs) == 2
    failed = [r for r in caplog.records if r.message.startswith("schedule nightly-off: scene")]
    assert failed[0].message == "schedule nightly-off: scene class-end failed (due 22:00)"
    assert failed[0].exc_info is not None


async def test_a_store_that_cannot_record_does_not_stop_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FullDisk(MemoryLastRunStore):
        async def set(self, entry_id: str, when: datetime) -> None:
            raise OSError("disk full")

    clock, room = FakeClock(baku("2024-03-04 21:59")), Room()
    async with running([entry()], clock, FullDisk({"nightly-off": baku("2024-03-01 22:00")}), room):
        await clock.next_sleep()
        clock.advance(timedelta(minutes=1))
        assert await clock.next_sleep() == DAY
    assert len(room.runs) == 1
    assert any("could not record" in m for m in caplog.messages)


async def test_entries_due_together_run_in_config_order() -> None:
    first, second = entry("a", scene="class-end"), entry("b", scene="lights-off")
    clock, store, room = FakeClock(baku("2024-03-04 21:00")), MemoryLastRunStore(), Room()
    async with running([second, first], clock, store, room):
        await clock.next_sleep()
        clock.advance(timedelta(hours=1))
        await clock.next_sleep()
    assert [entry_id for entry_id, _ in room.runs] == ["b", "a"]


async def test_update_replaces_the_entries_and_replans_the_sleep() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 12:00")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room) as scheduler:
        assert await clock.next_sleep() == 10 * HOUR
        lunch = entry("lunch-blank", "daily 13:00", "blank")
        await scheduler.update([lunch])
        assert await clock.next_sleep() == HOUR
        assert scheduler.entries == (lunch,)
        clock.set(baku("2024-03-04 13:00"))
        assert await clock.next_sleep() == DAY
        clock.set(baku("2024-03-04 22:00"))  # nightly-off is gone
        await asyncio.sleep(0.01)
    assert room.runs == [("lunch-blank", utc(baku("2024-03-04 13:00")))]


async def test_an_entry_pushed_or_retimed_at_runtime_is_first_due_after_now() -> None:
    store = MemoryLastRunStore({"nightly-off": baku("2024-03-01 23:00")})
    clock, room = FakeClock(baku("2024-03-04 21:00")), Room()
    async with running([entry(when="weekdays 23:00")], clock, store, room) as scheduler:
        assert await clock.next_sleep() == 2 * HOUR
        clock.set(baku("2024-03-04 22:10"))  # not due yet: the sleeper stays asleep
        # The hub moves it to 22:00: missed by 10 min, but that is not a missed run.
        await scheduler.update([entry(when="weekdays 22:00"), entry("new", "daily 22:05")])
        assert await clock.next_sleep() == DAY - 10 * 60  # Tuesday 22:00
    assert room.runs == []
    assert store.values["new"] == baku("2024-03-04 22:10")


async def test_unchanged_entries_keep_their_state_across_update() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:59")), MemoryLastRunStore(), Room()
    async with running([entry()], clock, store, room) as scheduler:
        await clock.next_sleep()
        clock.advance(timedelta(minutes=1))
        assert await clock.next_sleep() == DAY
        await scheduler.update([entry(grace_minutes=60)])
        assert await clock.next_sleep() == DAY
    assert len(room.runs) == 1


async def test_disabled_entries_never_run_and_are_not_listed() -> None:
    clock, store, room = FakeClock(baku("2024-03-04 21:00")), MemoryLastRunStore(), Room()
    off = entry(enabled=False)
    morning = entry("morning-on", "weekdays 08:00", "class-start")
    async with running([off, morning], clock, store, room) as scheduler:
        assert await clock.next_sleep() == 11 * HOUR
        assert [(e.id, when) for e, when in scheduler.next_runs()] == [
            ("morning-on", baku("2024-03-05 08:00"))
        ]
        await scheduler.update([off])
        await asyncio.sleep(0.01)
        assert scheduler.next_runs() == []
        clock.advance(timedelta(days=2))
        await asyncio.sleep(0.01)
    assert room.runs == []
    assert clock.sleeps == [11 * HOUR]  # nothing enabled: waits for an update, no timer


async def test_next_runs_soonest_first_in_the_room_zone() -> None:
    clock = FakeClock(baku("2024-03-04 12:00"))
    entries = [entry(), entry("lunch", "daily 13:00", "blank"), entry("sat", "weekends 09:00")]
    scheduler = Scheduler(entries, BAKU, Room().run, MemoryLastRunStore(), clock)
    runs = scheduler.next_runs()
    assert [(e.id, when.isoformat()) for e, when in runs] == [
        ("lunch", "2024-03-04T13:00:00+04:00"),
        ("nightly-off", "2024-03-04T22:00:00+04:00"),
        ("sat", "2024-03-09T09:00:00+04:00"),
    ]
    assert all(when.tzinfo is BAKU for _, when in runs)


async def test_grace_zero_still_runs_on_time_but_never_late() -> None:
    store = MemoryLastRunStore({"strict": baku("2024-03-01 22:00")})
    clock, room = FakeClock(baku("2024-03-04 22:05")), Room()
    async with running([entry("strict", grace_minutes=0)], clock, store, room):
        await clock.next_sleep()
        assert room.runs == []
        clock.set(baku("2024-03-05 22:00:00.2"))  # woken a little late, as always
        await clock.next_sleep()
    assert room.runs == [("strict", utc(baku("2024-03-05 22:00")))]


class TestDaylightSaving:
    async def test_spring_forward_runs_the_missing_time_once_when_the_gap_ends(self) -> None:
        start = datetime(2024, 3, 30, 12, tzinfo=BERLIN)
        clock, store, room = FakeClock(start), MemoryLastRunStore(), Room()
        async with running([entry("night", "daily 02:30")], clock, store, room, BERLIN):
            assert await clock.next_sleep() == 14 * HOUR  # to 03:00 CEST, an hour less
            clock.advance(timedelta(hours=14))
            assert await clock.next_sleep() == 23.5 * HOUR
        assert room.runs == [("night", datetime(2024, 3, 31, 1, tzinfo=UTC))]

    async def test_fall_back_runs_an_entry_in_the_repeated_hour_once(self) -> None:
        start = datetime(2024, 10, 26, 12, tzinfo=BERLIN)
        clock, store, room = FakeClock(start), MemoryLastRunStore(), Room()
        async with running([entry("night", "daily 02:30")], clock, store, room, BERLIN):
            assert await clock.next_sleep() == 14.5 * HOUR
            clock.advance(timedelta(hours=14.5))
            assert await clock.next_sleep() == 25 * HOUR  # past the second 02:30
            clock.advance(timedelta(hours=1))  # the clock reads 02:30 again
            await asyncio.sleep(0.01)
        assert room.runs == [("night", datetime(2024, 10, 27, 0, 30, tzinfo=UTC))]


def test_entries_must_have_distinct_ids() -> None:
    with pytest.raises(ValueError, match="schedule id 'a' is used twice"):
        Scheduler([entry("a"), entry("a")], BAKU, Room().run, MemoryLastRunStore())


def test_grace_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="grace must not be negative"):
        entry(grace_minutes=-1)


class TestSystemClock:
    async def test_now_is_aware_utc(self) -> None:
        assert SystemClock().now().tzinfo is UTC

    @pytest.mark.parametrize("step", [timedelta(hours=2), -timedelta(hours=2)])
    async def test_sleep_ends_when_the_wall_clock_jumps(self, step: timedelta) -> None:
        class SteppedClock(SystemClock):
            step = timedelta(0)

            def now(self) -> datetime:
                return super().now() + self.step

        clock = SteppedClock(check_every=0.005)
        sleeping = asyncio.create_task(clock.sleep(HOUR))
        await asyncio.sleep(0.02)
        assert not sleeping.done()
        clock.step = step  # the PC waking from suspend, or NTP stepping the clock back
        await asyncio.wait_for(sleeping, 1.0)

    async def test_a_short_sleep_is_one_timer(self) -> None:
        started = asyncio.get_running_loop().time()
        await SystemClock().sleep(0.01)
        assert 0.01 <= asyncio.get_running_loop().time() - started < 0.5
