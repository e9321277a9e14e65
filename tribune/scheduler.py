"""Local schedules: run a scene at `weekdays 22:00`, with no link to the centre.

The scheduler keeps, per entry, a *settled* instant: every due time at or before it has been
dealt with (run, or skipped as too late). It is persisted in a `LastRunStore` so that after a
restart only due times later than it are considered, and only the most recent of those, once.

Runs are recorded *before* `run` is called: if the service dies mid-run the entry is not run
again on restart. A scene is desired state, so the room itself re-applies it after a restart;
running it twice would be harmless but running a late one twice would not be what was asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from tribune.recurrence import Recurrence, parse_when

__all__ = [
    "DEFAULT_GRACE",
    "Clock",
    "FakeClock",
    "LastRunStore",
    "MemoryLastRunStore",
    "Recurrence",
    "SceneTarget",
    "ScheduleEntry",
    "ScheduleTarget",
    "Scheduler",
    "SystemClock",
    "parse_when",
]

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(minutes=30)
# A due time noticed this late still counts as on time, whatever the grace (even 0): the
# event loop and a busy `run` of another entry make every run a little late.
ON_TIME = timedelta(minutes=1)
# A last run this far ahead of the clock was recorded under a wrong clock (a flat CMOS battery
# before NTP): waiting for the clock to pass it would silence the entry. Smaller steps back (NTP
# corrections) keep the rule that a due time never runs twice.
CLOCK_DISTRUST = timedelta(hours=12)
# Wall time lagging monotonic time by more than this during one nap is a step back.
STEP_TOLERANCE = 1.0


@dataclass(frozen=True)
class SceneTarget:
    """Activate the room's scene `scene`."""

    scene: str
    kind: Literal["scene"] = "scene"

    def __str__(self) -> str:
        return f"scene {self.scene}"


# One member today; an `ActionTarget` (kind "action") joins this union when it is needed.
ScheduleTarget = SceneTarget


@dataclass(frozen=True)
class ScheduleEntry:
    """One `[[schedule]]` of the room config."""

    id: str
    recurrence: Recurrence
    when: str  # the text as written, for messages and the API
    target: ScheduleTarget
    grace: timedelta = DEFAULT_GRACE
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.grace < timedelta(0):
            raise ValueError(f"schedule {self.id}: grace must not be negative")


class LastRunStore(Protocol):
    """Per entry id, the settled instant (see the module docstring); aware datetimes."""

    async def get(self, entry_id: str) -> datetime | None: ...

    async def set(self, entry_id: str, when: datetime) -> None: ...


class MemoryLastRunStore:
    """A `LastRunStore` in a dict, for tests and for rooms without a data dir."""

    def __init__(self, initial: dict[str, datetime] | None = None) -> None:
        self.values: dict[str, datetime] = dict(initial or {})

    async def get(self, entry_id: str) -> datetime | None:
        return self.values.get(entry_id)

    async def set(self, entry_id: str, when: datetime) -> None:
        self.values[entry_id] = when


class Clock(Protocol):
    """Wall-clock time and sleeping, replaceable in tests.

    `sleep` ends when the wall clock reaches the time it aimed at, or early when the wall clock
    is stepped back; callers re-read `now()` after it.
    """

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep until the wall clock has advanced `seconds` (or is stepped back)."""
        ...


class SystemClock:
    """The real clock; a sleep follows the wall clock through NTP steps and suspend."""

    def __init__(self, check_every: float = 60.0) -> None:
        self.check_every = check_every

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        # asyncio sleeps on the monotonic clock, which stops while the PC is suspended and
        # ignores steps of the wall clock. Waking once a minute to compare the two notices a
        # suspend or a step within a minute, at no measurable cost.
        loop = asyncio.get_running_loop()
        target = self.now() + timedelta(seconds=seconds)
        while True:
            wall, monotonic = self.now(), loop.time()
            left = (target - wall).total_seconds()
            if left <= 0:
                return
            await asyncio.sleep(min(left, self.check_every))
            walked = (self.now() - wall).total_seconds()
            if walked < loop.time() - monotonic - STEP_TOLERANCE:
                return  # stepped back: the caller re-plans from the new time


@dataclass
class _Sleeper:
    until: datetime
    woken: asyncio.Future[None]


class FakeClock:
    """A clock for tests: time moves only by `advance`/`set`, which wake the due sleepers."""

    def __init__(self, start: datetime) -> None:
        self._now = _utc(start)
        self._sleepers: list[_Sleeper] = []
        self._requests: asyncio.Queue[float] = asyncio.Queue()
        self.sleeps: list[float] = []  # every duration asked of `sleep`, in order

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._requests.put_nowait(seconds)
        sleeper = _Sleeper(self._now + timedelta(seconds=seconds), asyncio.Future())
        if sleeper.until <= self._now:
            await asyncio.sleep(0)
            return
        self._sleepers.append(sleeper)
        try:
            await sleeper.woken
        finally:
            if sleeper in self._sleepers:
                self._sleepers.remove(sleeper)

    def advance(self, delta: timedelta) -> None:
        """Move the clock by `delta` (negative moves it back, like an NTP step)."""
        self.set(self._now + delta)

    def set(self, when: datetime) -> None:
        """Set the clock; as with `SystemClock`, sleepers whose time has come wake, and a step
        back wakes them all."""
        back, self._now = _utc(when) < self._now, _utc(when)
        for sleeper in [s for s in self._sleepers if back or s.until <= self._now]:
            self._sleepers.remove(sleeper)
            if not sleeper.woken.done():
                sleeper.woken.set_result(None)

    async def next_sleep(self, timeout: float = 5.0) -> float:
        """Wait (in real time, up to `timeout`) for the next call of `sleep`; its duration."""
        return await asyncio.wait_for(self._requests.get(), timeout)


RunScheduled = Callable[[ScheduleEntry, datetime], Awaitable[None]]


@dataclass
class _Due:
    entry: ScheduleEntry
    due: datetime  # UTC
    late: timedelta


class Scheduler:
    """Runs each enabled entry at its due times; one entry's failure never stops the others.

    `run(entry, due)` gets the due time in the room's zone. It should hand the intent to the
    room and return: runs are sequential, so a run that waits for convergence delays the next.
    """

    def __init__(
        self,
        entries: Iterable[ScheduleEntry],
        tz: ZoneInfo,
        run: RunScheduled,
        last_runs: LastRunStore,
        clock: Clock | None = None,
    ) -> None:
        self.tz = tz
        self._run = run
        self._store = last_runs
        self._clock: Clock = clock or SystemClock()
        self._entries = _by_id(entries)
        self._settled: dict[str, datetime] = {}  # UTC, for enabled entries
        self._started = False
        self._changed = asyncio.Event()

    @property
    def entries(self) -> tuple[ScheduleEntry, ...]:
        """All entries, enabled or not, in config order."""
        return tuple(self._entries.values())

    def next_runs(self) -> list[tuple[ScheduleEntry, datetime]]:
        """Each enabled entry with its next due time (room zone), soonest first."""
        now = self._clock.now()
        runs = [(entry, self._next_due(entry, now)) for entry in self._enabled()]
        # By instant: same-zone datetimes compare by wall time, wrong in a fall-back hour.
        return sorted(runs, key=lambda run: run[1].astimezone(UTC))

    async def update(self, entries: Iterable[ScheduleEntry]) -> None:
        """Replace the entries. A new, re-enabled or re-timed entry is first due after now."""
        new = _by_id(entries)
        old, self._entries = self._entries, new
        if not self._started:
            return  # run_forever loads them from the store
        now = self._clock.now()
        fresh = []
        for entry in new.values():
            before = old.get(entry.id)
            if not entry.enabled:
                self._settled.pop(entry.id, None)
            elif before is None or not before.enabled or before.recurrence != entry.recurrence:
                self._settled[entry.id] = now
                fresh.append(entry.id)
        for gone in old.keys() - new.keys():
            self._settled.pop(gone, None)
        self._changed.set()
        for entry_id in fresh:
            await self._record(entry_id, now)
        log.info("schedule: %d entries, %d enabled", len(new), len(self._enabled()))

    async def run_forever(self) -> None:
        """Run entries as they fall due; returns only by cancellation."""
        self._started = True
        while True:
            self._changed.clear()
            await self._load_settled()
            while (item := self._earliest_unsettled()) is not None:
                # Settled before running: a crash mid-run never runs it twice.
                self._settled[item.entry.id] = item.due
                await self._record(item.entry.id, item.due)
                if item.late <= max(item.entry.grace, ON_TIME):
                    await self._execute(item)
                else:
                    self._log_missed(item)
            if not self._changed.is_set():
                await self._wait(self._next_wakeup())

    def _enabled(self) -> list[ScheduleEntry]:
        return [entry for entry in self._entries.values() if entry.enabled]

    async def _load_settled(self) -> None:
        for entry in self._enabled():
            if entry.id in self._settled:
                continue
            try:
                stored = await self._store.get(entry.id)
            except Exception:
                log.exception("schedule %s: cannot read its last run; counting from now", entry.id)
                stored = self._clock.now()
            if entry.id in self._settled:  # settled by update() meanwhile
                continue
            if stored is None:
                # Never seen before: it owes nothing from before this moment.
                stored = self._clock.now()
                await self._record(entry.id, stored)
            self._settled[entry.id] = _utc(stored)
        await self._forget_future_runs()

    async def _forget_future_runs(self) -> None:
        """Count from now for entries settled far ahead: the clock was wrong then, or is now."""
        now = self._clock.now()
        for entry_id, settled in list(self._settled.items()):
            if settled - now > CLOCK_DISTRUST:
                log.warning(
                    "schedule %s: last run recorded at %s, %s ahead of the clock; "
                    "counting from now",
                    entry_id,
                    settled.astimezone(self.tz).strftime("%Y-%m-%d %H:%M"),
                    _span(settled - now),
                )
                self._settled[entry_id] = now
                await self._record(entry_id, now)

    def _earliest_unsettled(self) -> _Due | None:
        """The earliest entry whose latest due time is after its settled instant."""
        now = self._clock.now()
        local_now = now.astimezone(self.tz)
        earliest: _Due | None = None
        for entry in self._enabled():
            settled = self._settled.get(entry.id)
            if settled is None:
                continue
            # Only the latest: after a long stop the older ones are past any grace.
            due = _utc(entry.recurrence.previous_at_or_before(local_now))
            if due > settled and (earliest is None or due < earliest.due):
                earliest = _Due(entry, due, now - due)
        return earliest

    def _log_missed(self, item: _Due) -> None:
        log.warning(
            "missed %s at %s by %s, beyond the %s grace; skipped",
            item.entry.id,
            self._local(item.due),
            _span(item.late),
            _span(item.entry.grace),
            extra={"schedule": item.entry.id, "due": item.due.isoformat()},
        )

    async def _execute(self, item: _Due) -> None:
        entry = item.entry
        late = "" if item.late <= ON_TIME else f", {_span(item.late)} late, within the grace"
        log.info(
            "schedule %s: running %s (due %s %s%s)",
            entry.id,
            entry.target,
            self._local(item.due),
            self.tz.key,
            late,
            extra={"schedule": entry.id, "due": item.due.isoformat()},
        )
        try:
            await self._run(entry, item.due.astimezone(self.tz))
        except Exception:
            log.exception(
                "schedule %s: %s failed (due %s)",
                entry.id,
                entry.target,
                self._local(item.due),
                extra={"schedule": entry.id, "due": item.due.isoformat()},
            )

    async def _record(self, entry_id: str, when: datetime) -> None:
        try:
            await self._store.set(entry_id, when)
        except Exception:
            # Running anyway: a missed "all off" is worse than a rare repeat after a crash.
            log.exception("schedule %s: could not record its run at %s", entry_id, when)

    def _next_due(self, entry: ScheduleEntry, now: datetime) -> datetime:
        after = max(now, self._settled.get(entry.id, now))  # a clock set back: not again
        if after - now > CLOCK_DISTRUST:
            after = now  # see _forget_future_runs
        return entry.recurrence.next_after(after.astimezone(self.tz))

    def _next_wakeup(self) -> datetime | None:
        now = self._clock.now()
        return min((self._next_due(entry, now) for entry in self._enabled()), default=None)

    async def _wait(self, until: datetime | None) -> None:
        """Sleep until `until` (None: for ever) or until the entries change."""
        changed = asyncio.ensure_future(self._changed.wait())
        waits: set[asyncio.Future[Any]] = {changed}
        if until is not None:
            seconds = (until - self._clock.now()).total_seconds()
            waits.add(asyncio.ensure_future(self._clock.sleep(seconds)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _local(self, due: datetime) -> str:
        """`22:00` today, `2024-03-04 22:00` on another day."""
        local = due.astimezone(self.tz)
        if local.date() == self._clock.now().astimezone(self.tz).date():
            return local.strftime("%H:%M")
        return local.strftime("%Y-%m-%d %H:%M")


def _by_id(entries: Iterable[ScheduleEntry]) -> dict[str, ScheduleEntry]:
    by_id: dict[str, ScheduleEntry] = {}
    for entry in entries:
        if entry.id in by_id:
            raise ValueError(f"schedule id {entry.id!r} is used twice")
        by_id[entry.id] = entry
    return by_id


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"{when} has no time zone")
    return when.astimezone(UTC)


def _span(delta: timedelta) -> str:
    """`3 h`, `1 h 20 min`, `2 d 4 h`, `45 s`."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    return " ".join([f"{n} {unit}" for n, unit in parts if n][:2])
