"""When a schedule entry is due: `daily 22:00`, `weekdays 22:00`, `mon,wed,fri 08:30`, or cron.

A `Recurrence` is a set of local wall-clock times (minute resolution). It carries no time zone:
`next_after(dt)` and `previous_at_or_before(dt)` evaluate it in `dt`'s zone. Each matching wall
time is due at one instant, the first at which the wall clock reads that time or later:

- a time that occurs twice (autumn fall-back) is due at its first occurrence only;
- a time that does not exist (spring-forward gap) is due when the gap ends (02:30 -> 03:00);
  every time inside one gap is therefore the same instant, and runs once.
"""

from __future__ import annotations

import bisect
import calendar
import difflib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

__all__ = ["Recurrence", "parse_when"]

FORMS = (
    "'daily HH:MM', 'weekdays HH:MM', 'weekends HH:MM', a day list such as 'mon,wed,fri HH:MM', "
    "or a 5-field cron expression such as '0 22 * * 1-5'"
)
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron numbering: 0 = Sunday
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
KEYWORD_DAYS = {
    "daily": frozenset(range(7)),
    "weekdays": frozenset(range(1, 6)),
    "weekends": frozenset({0, 6}),
}
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_MINUTE = timedelta(minutes=1)
# Farthest a search walks: a leap day that must also be a Monday recurs every 28 years.
_HORIZON_YEARS = 30


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


_CRON_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, MONTH_NAMES),
    _Field("day-of-week", 0, 7, DAY_NAMES),
)


@dataclass(frozen=True)
class Recurrence:
    """Local wall-clock times of day on the days that match (cron semantics)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    # cron: when both day fields are restricted (neither starts with '*'), either may match.
    day_fields_or: bool = False
    text: str = field(default="", compare=False)
    _times: list[tuple[int, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_times", sorted((h, m) for h in self.hours for m in self.minutes))

    def matches_day(self, day: date) -> bool:
        """Whether `day` is one of the recurrence's days."""
        if day.month not in self.months:
            return False
        by_month = day.day in self.days_of_month
        by_week = (day.weekday() + 1) % 7 in self.days_of_week
        return (by_month or by_week) if self.day_fields_or else (by_month and by_week)

    def matches(self, wall: datetime) -> bool:
        """Whether the naive or aware local wall time `wall` (minute resolution) is due."""
        return (
            self.matches_day(wall.date())
            and wall.hour in self.hours
            and wall.minute in self.minutes
            and wall.second == 0
            and wall.microsecond == 0
        )

    def next_after(self, dt: datetime) -> datetime:
        """The first due instant strictly after `dt`, in `dt`'s time zone."""
        tz = _zone_of(dt)
        at = dt.astimezone(UTC)
        wall = _floor_minute(_reading(at, tz)) + _MINUTE
        while True:
            wall = self._wall_at_or_after(wall)
            due = _instant(wall, tz)
            # After a fall-back the wall clock repeats: times after `dt`'s wall reading may
            # already have been due in the first pass.
            if due > at:
                return due.astimezone(tz)
            wall += _MINUTE

    def previous_at_or_before(self, dt: datetime) -> datetime:
        """The last due instant at or before `dt`, in `dt`'s time zone."""
        tz = _zone_of(dt)
        at = dt.astimezone(UTC)
        floor = _floor_minute(_reading(at, tz))
        # In the second pass of a fall-back, wall times ahead of `dt`'s reading were due in
        # the first pass; they are later than any time at or before the reading.
        best: datetime | None = None
        wall = floor + _MINUTE
        while (due := _instant(wall := self._wall_at_or_after(wall), tz)) <= at:
            best = due
            wall += _MINUTE
        if best is not None:
            return best.astimezone(tz)
        wall = floor
        while (due := _instant(wall := self._wall_at_or_before(wall), tz)) > at:
            wall -= _MINUTE
        return due.astimezone(tz)

    def _wall_at_or_after(self, wall: datetime) -> datetime:
        times = self._times
        day, start = wall.date(), (wall.hour, wall.minute)
        limit = day.year + _HORIZON_YEARS
        while day.year <= limit:
            if day.month not in self.months:
                day = _first_of_next_month(day)
                start = (0, 0)
                continue
            if self.matches_day(day):
                i = bisect.bisect_left(times, start)
                if i < len(times):
                    return datetime(day.year, day.month, day.day, *times[i])
            day += timedelta(days=1)
            start = (0, 0)
        raise RuntimeError(f"{self.text!r}: no due time within {_HORIZON_YEARS} years")

    def _wall_at_or_before(self, wall: datetime) -> datetime:
        times = self._times
        day, end = wall.date(), (wall.hour, wall.minute)
        limit = day.year - _HORIZON_YEARS
        while day.year >= limit:
            if day.month not in self.months:
                day = day.replace(day=1) - timedelta(days=1)
                end = (23, 59)
                continue
            if self.matches_day(day):
                i = bisect.bisect_right(times, end)
                if i > 0:
                    return datetime(day.year, day.month, day.day, *times[i - 1])
            day -= timedelta(days=1)
            end = (23, 59)
        raise RuntimeError(f"{self.text!r}: no due time within {_HORIZON_YEARS} years")


def parse_when(text: str) -> Recurrence:
    """Parse a schedule's `when`; a `ValueError` explains what is wrong in words."""
    words = text.strip().lower().split()
    if not words:
        raise ValueError(f"empty; expected {FORMS}")
    if len(words) == 5:
        return _parse_cron(words, text)
    if len(words) == 6:
        raise ValueError("cron with seconds or a year (6 fields) is not supported; use 5 fields")
    if len(words) != 2:
        raise ValueError(f"{text.strip()!r} is not a schedule; expected {FORMS}")
    days_text, time_text = words
    if _TIME.fullmatch(days_text):
        raise ValueError(f"write the days before the time, e.g. '{time_text} {days_text}'")
    hour, minute = _parse_time(time_text)
    days = KEYWORD_DAYS.get(days_text)
    if days is None:
        days = _parse_day_list(days_text)
    return Recurrence(
        minutes=frozenset({minute}),
        hours=frozenset({hour}),
        days_of_month=frozenset(range(1, 32)),
        months=frozenset(range(1, 13)),
        days_of_week=days,
        text=text,
    )


def _parse_time(text: str) -> tuple[int, int]:
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time of day; write HH:MM, e.g. 22:00")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r} is not a time of day; HH:MM runs from 00:00 to 23:59")
    return hour, minute


def _parse_day_list(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.split(","):
        if item in KEYWORD_DAYS:  # weekends,fri
            days.update(KEYWORD_DAYS[item])
            continue
        first, dash, last = item.partition("-")
        start = _day(first, text)
        stop = _day(last, text) if dash else start
        # mon-fri, and also fri-mon across the weekend
        span = (stop - start) % 7
        days.update((start + i) % 7 for i in range(span + 1))
    return frozenset(days)


def _day(word: str, text: str) -> int:
    if word in DAY_NAMES:
        return DAY_NAMES.index(word)
    candidates = [*KEYWORD_DAYS, *DAY_NAMES]
    close = difflib.get_close_matches(word, candidates, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if not word:
        raise ValueError(f"{text!r}: empty day in the day list")
    raise ValueError(
        f"{word!r} is not a day{hint}; use daily, weekdays, weekends or days such as "
        f"mon,wed,fri or mon-fri"
    )


def _parse_cron(words: list[str], text: str) -> Recurrence:
    values = [_parse_cron_field(word, spec) for word, spec in zip(words, _CRON_FIELDS, strict=True)]
    minutes, hours, days_of_month, months, days_of_week = values
    days_of_week = frozenset(d % 7 for d in days_of_week)  # 7 is Sunday too
    dom_star, dow_star = words[2].startswith("*"), words[4].startswith("*")
    day_fields_or = not dom_star and not dow_star
    if not day_fields_or and not any(
        day <= _longest_month(month) for month in months for day in days_of_month
    ):
        raise ValueError(
            f"{text.strip()!r} never happens: day {_listing(days_of_month)} "
            f"does not occur in month {_listing(months)}"
        )
    return Recurrence(
        minutes=minutes,
        hours=hours,
        days_of_month=days_of_month,
        months=months,
        days_of_week=days_of_week,
        day_fields_or=day_fields_or,
        text=text,
    )


def _parse_cron_field(word: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in word.split(","):
        where = f"{spec.name} field {word!r}"
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{where}: step {step_text!r} must be a whole number above 0")
            step = int(step_text)
        if span == "*":
            low, high = spec.low, spec.high
        else:
            first, dash, last = span.partition("-")
            low = _cron_value(first, spec, where)
            high = _cron_value(last, spec, where) if dash else low
            if slash and not dash:
                raise ValueError(f"{where}: a step needs a range, e.g. {low}-{spec.high}/{step}")
            if high < low:
                sunday = "; Sunday is 0 or 7" if spec.names == DAY_NAMES else ""
                raise ValueError(f"{where}: range {span!r} runs backwards{sunday}")
        values.update(range(low, high + 1, step))
    return frozenset(values)


def _cron_value(word: str, spec: _Field, where: str) -> int:
    if word.isdigit():
        value = int(word)
        if not spec.low <= value <= spec.high:
            raise ValueError(f"{where}: {value} is out of range {spec.low}-{spec.high}")
        return value
    if word in spec.names:
        return spec.low + spec.names.index(word)
    if not word:
        raise ValueError(f"{where}: a number is missing")
    names = f" or a name ({', '.join(spec.names)})" if spec.names else ""
    raise ValueError(f"{where}: {word!r} is not a number {spec.low}-{spec.high}{names}")


def _longest_month(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _listing(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def _zone_of(dt: datetime) -> tzinfo:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("a schedule needs a timezone-aware datetime")
    return dt.tzinfo


def _reading(at: datetime, tz: tzinfo) -> datetime:
    """What the wall clock in `tz` reads at `at` (also right for a `dt` inside a gap)."""
    return at.astimezone(tz).replace(tzinfo=None)


def _floor_minute(wall: datetime) -> datetime:
    return wall.replace(second=0, microsecond=0, fold=0)


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _instant(wall: datetime, tz: tzinfo) -> datetime:
    """The first UTC instant at which the wall clock in `tz` reads `wall` or later."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _reading(first, tz) == wall:
        return first  # exists; fold=0 is the first of two occurrences
    # `wall` falls in a gap: fold=1 reads it with the offset after the gap (an instant before
    # the transition), fold=0 with the offset before (an instant after). Find the transition.
    low = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    high = int(first.timestamp()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        reading = datetime.fromtimestamp(middle, tz).replace(tzinfo=None)
        if reading >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
