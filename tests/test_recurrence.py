"""Schedule `when` texts: parsing, next/previous due times, DST gaps and overlaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tribune.recurrence import Recurrence, parse_when

BAKU = ZoneInfo("Asia/Baku")
BERLIN = ZoneInfo("Europe/Berlin")


def baku(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BAKU)


def berlin(text: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN, fold=fold)


def utc(dt: datetime) -> datetime:
    # Aware datetimes sharing a tzinfo compare by wall time, ignoring fold: compare in UTC.
    return dt.astimezone(UTC)


@pytest.mark.parametrize(
    ("simple", "cron"),
    [
        ("daily 22:00", "0 22 * * *"),
        ("weekdays 22:00", "0 22 * * 1-5"),
        ("weekends 9:05", "5 9 * * 0,6"),
        ("mon,wed,fri 08:30", "30 8 * * 1,3,5"),
        ("mon-fri 22:00", "0 22 * * mon-fri"),
        ("fri-mon 07:00", "0 7 * * 5-7,1"),
        ("weekends,fri 18:00", "0 18 * * fri,sat,sun"),
        ("  Weekdays   22:00 ", "0 22 * * 1-5"),
    ],
)
def test_simple_forms_equal_their_cron(simple: str, cron: str) -> None:
    assert parse_when(simple) == parse_when(cron)


def test_the_text_is_kept_but_not_compared() -> None:
    recurrence = parse_when("weekdays 22:00")
    assert recurrence.text == "weekdays 22:00"
    assert recurrence == parse_when("0 22 * * 1-5")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("*/15 * * * *", {"minutes": {0, 15, 30, 45}}),
        ("0-10/5,58 * * * *", {"minutes": {0, 5, 10, 58}}),
        ("0 */6 * * *", {"hours": {0, 6, 12, 18}}),
        ("0 0 * jan,jul *", {"months": {1, 7}}),
        ("0 0 * * 7", {"days_of_week": {0}}),
        ("0 0 * * 0-7", {"days_of_week": set(range(7))}),
        ("0 0 * * 5-7", {"days_of_week": {5, 6, 0}}),
    ],
)
def test_cron_fields(text: str, fields: dict[str, set[int]]) -> None:
    recurrence = parse_when(text)
    for name, expected in fields.items():
        assert getattr(recurrence, name) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty; expected 'daily HH:MM'"),
        ("weekday 22:00", r"'weekday' is not a day \(did you mean 'weekdays'\?\)"),
        ("mon,frii 10:00", r"'frii' is not a day \(did you mean 'fri'\?\)"),
        ("mon,,fri 10:00", "empty day in the day list"),
        ("daily 24:00", "'24:00' is not a time of day; HH:MM runs from 00:00 to 23:59"),
        ("daily 22.00", "'22.00' is not a time of day; write HH:MM"),
        ("daily", "'daily' is not a schedule; expected"),
        ("22:00 weekdays", "write the days before the time, e.g. 'weekdays 22:00'"),
        ("every day at 22:00", "is not a schedule"),
        ("0 22 * * 1-5 2024", r"6 fields\) is not supported"),
        ("61 * * * *", "minute field '61': 61 is out of range 0-59"),
        ("0 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
        ("0 0 * 13 *", "month field '13': 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field '8': 8 is out of range 0-7"),
        ("0 0 * * mon-sun", "runs backwards; Sunday is 0 or 7"),
        ("0 0 * * funday", r"'funday' is not a number 0-7 or a name \(sun, mon"),
        ("*/0 * * * *", "step '0' must be a whole number above 0"),
        ("*/x * * * *", "step 'x' must be a whole number above 0"),
        ("5/15 * * * *", "a step needs a range, e.g. 5-59/15"),
        ("1- * * * *", "a number is missing"),
        ("0 0 30 2 *", "never happens: day 30 does not occur in month 2"),
        ("0 0 31 4,6 *", "never happens"),
    ],
)
def test_invalid_forms_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_when(text)


def test_a_day_that_exists_in_some_month_is_accepted() -> None:
    assert parse_when("0 0 31 4,5 *").months == {4, 5}
    assert parse_when("0 0 30 2 1").day_fields_or  # Mondays in February: cron's either rule


@pytest.mark.parametrize(
    ("when", "after", "expected"),
    [
        ("weekdays 22:00", "2024-03-04 21:59", "2024-03-04 22:00"),  # Monday
        ("weekdays 22:00", "2024-03-04 22:00", "2024-03-05 22:00"),  # strictly after
        ("weekdays 22:00", "2024-03-08 22:00", "2024-03-11 22:00"),  # Friday -> Monday
        ("weekends 10:00", "2024-03-04 08:00", "2024-03-09 10:00"),
        ("daily 00:00", "2024-12-31 23:59:30", "2025-01-01 00:00"),  # year boundary
        ("0 9 31 * *", "2024-04-01 00:00", "2024-05-31 09:00"),  # April has no 31st
        ("0 9 31 * *", "2024-01-31 09:00", "2024-03-31 09:00"),
        ("0 0 29 2 *", "2024-03-01 00:00", "2028-02-29 00:00"),  # leap days only
        ("0 0 1 * 1", "2024-03-02 00:00", "2024-03-04 00:00"),  # the 1st OR a Monday
        ("0 0 1 * 1", "2024-03-25 00:00", "2024-04-01 00:00"),
        ("0 0 */10 * 1", "2024-03-01 00:00", "2024-03-11 00:00"),  # '*' dom: AND (Vixie)
        ("*/15 * * * *", "2024-03-04 10:07:12", "2024-03-04 10:15"),
        ("0 8 * * 0", "2024-03-04 00:00", "2024-03-10 08:00"),
        ("0 8 * * 7", "2024-03-04 00:00", "2024-03-10 08:00"),
    ],
)
def test_next_after(when: str, after: str, expected: str) -> None:
    assert parse_when(when).next_after(baku(after)) == baku(expected)


@pytest.mark.parametrize(
    ("when", "at", "expected"),
    [
        ("weekdays 22:00", "2024-03-04 22:00", "2024-03-04 22:00"),  # at: included
        ("weekdays 22:00", "2024-03-04 21:59", "2024-03-01 22:00"),  # Monday -> Friday
        ("0 9 31 * *", "2024-05-01 00:00", "2024-03-31 09:00"),
        ("0 0 29 2 *", "2027-01-01 00:00", "2024-02-29 00:00"),
    ],
)
def test_previous_at_or_before(when: str, at: str, expected: str) -> None:
    assert parse_when(when).previous_at_or_before(baku(at)) == baku(expected)


def test_result_is_in_the_zone_of_the_argument() -> None:
    due = parse_when("daily 22:00").next_after(datetime(2024, 3, 4, 12, tzinfo=UTC))
    assert due == datetime(2024, 3, 4, 22, tzinfo=UTC)
    assert due.tzinfo is UTC


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("daily 22:00").next_after(datetime(2024, 3, 4, 12))


class TestDaylightSaving:
    """Europe/Berlin: 2024-03-31 02:00 -> 03:00 (gap), 2024-10-27 03:00 -> 02:00 (overlap)."""

    def test_a_time_in_the_gap_is_due_when_the_gap_ends(self) -> None:
        due = parse_when("daily 02:30").next_after(berlin("2024-03-30 12:00"))
        assert utc(due) == utc(berlin("2024-03-31 03:00"))
        assert due.utcoffset() == timedelta(hours=2)

    def test_the_day_after_the_gap_is_back_to_normal(self) -> None:
        daily = parse_when("daily 02:30")
        assert utc(daily.next_after(berlin("2024-03-31 03:00"))) == utc(berlin("2024-04-01 02:30"))

    def test_every_time_in_the_gap_runs_once_at_its_end(self) -> None:
        half_hourly = parse_when("*/30 * * * *")
        seen, at = [], berlin("2024-03-31 01:00")
        for _ in range(3):
            at = half_hourly.next_after(at)
            seen.append(utc(at))
        # 02:00 and 02:30 do not exist; both, and 03:00 itself, are one instant.
        assert seen == [
            utc(berlin(t)) for t in ("2024-03-31 01:30", "2024-03-31 03:00", "2024-03-31 03:30")
        ]

    def test_a_time_in_the_overlap_runs_once_at_its_first_occurrence(self) -> None:
        daily = parse_when("daily 02:30")
        first = daily.next_after(berlin("2024-10-26 12:00"))
        assert utc(first) == utc(berlin("2024-10-27 02:30", fold=0))
        assert first.utcoffset() == timedelta(hours=2)
        # Not again an hour later, when the clock reads 02:30 a second time.
        assert utc(daily.next_after(first)) == utc(berlin("2024-10-28 02:30"))
        second_pass = berlin("2024-10-27 02:10", fold=1)
        assert utc(daily.next_after(second_pass)) == utc(berlin("2024-10-28 02:30"))
        assert utc(daily.previous_at_or_before(second_pass)) == utc(first)

    def test_the_repeated_hour_is_not_repeated(self) -> None:
        half_hourly = parse_when("*/30 * * * *")
        seen, at = [], berlin("2024-10-27 01:45")
        for _ in range(4):
            at = half_hourly.next_after(at)
            seen.append((at.strftime("%H:%M"), at.utcoffset()))
        cest, cet = timedelta(hours=2), timedelta(hours=1)
        assert seen == [("02:00", cest), ("02:30", cest), ("03:00", cet), ("03:30", cet)]

    def test_a_day_skipped_entirely(self) -> None:
        apia = ZoneInfo("Pacific/Apia")  # 2011-12-30 did not happen in Samoa
        due = parse_when("daily 10:00").next_after(datetime(2011, 12, 29, 12, tzinfo=apia))
        assert utc(due) == utc(datetime(2011, 12, 31, 0, 0, tzinfo=apia))


# --- properties ---------------------------------------------------------------------------

ZONES = [ZoneInfo(name) for name in ("Europe/Berlin", "Asia/Baku", "America/New_York")]
ZONES += [ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Pacific/Apia"), ZoneInfo("UTC")]


def _cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    step = st.integers(1, high - low + 1).map(str)
    ordered = st.tuples(number, number).map(sorted)
    item = st.one_of(
        number.map(str),
        ordered.map(lambda r: f"{r[0]}-{r[1]}"),
        st.tuples(ordered, step).map(lambda t: f"{t[0][0]}-{t[0][1]}/{t[1]}"),
    )
    return st.one_of(
        st.just("*"),
        step.map(lambda s: f"*/{s}"),
        st.lists(item, min_size=1, max_size=3).map(",".join),
    )


CRON = st.tuples(
    _cron_field(0, 59),
    _cron_field(0, 23),
    _cron_field(1, 31),
    _cron_field(1, 12),
    _cron_field(0, 7),
).map(" ".join)
DAYS = st.sampled_from(["daily", "weekdays", "weekends", "mon,wed,fri", "sun", "fri-mon"])
SIMPLE = st.tuples(DAYS, st.integers(0, 23), st.integers(0, 59)).map(
    lambda t: f"{t[0]} {t[1]:02d}:{t[2]:02d}"
)
INSTANTS = st.datetimes(
    min_value=datetime(1995, 1, 1),
    max_value=datetime(2060, 1, 1),
    timezones=st.sampled_from(ZONES),
)


def _recurrence(text: str) -> Recurrence:
    try:
        return parse_when(text)
    except ValueError:
        assume(False)  # a cron that never happens (day 31 of February only)
        raise


def _after_a_transition(dt: datetime) -> bool:
    return (dt - timedelta(seconds=1)).astimezone(dt.tzinfo).utcoffset() != dt.utcoffset()


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(CRON, SIMPLE), at=INSTANTS)
def test_next_and_previous_bracket_any_instant(text: str, at: datetime) -> None:
    recurrence = _recurrence(text)
    following = recurrence.next_after(at)
    previous = recurrence.previous_at_or_before(at)
    assert utc(previous) <= utc(at) < utc(following)
    assert following.tzinfo is at.tzinfo
    # Nothing is due between them: each finds the other.
    assert utc(recurrence.next_after(previous)) == utc(following)
    assert utc(recurrence.previous_at_or_before(following)) == utc(following)
    # A due time reads as a matching wall time, unless it is the end of a gap.
    assert recurrence.matches(following) or _after_a_transition(following)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(CRON, SIMPLE), spaces=st.sampled_from([" ", "  ", "\t"]))
def test_parsing_is_stable(text: str, spaces: str) -> None:
    recurrence = _recurrence(text)
    assert parse_when(recurrence.text) == recurrence
    assert parse_when(f" {spaces.join(text.upper().split())} ") == recurrence
    assert recurrence.minutes
    assert recurrence.hours
    assert recurrence.days_of_week
    assert max(recurrence.days_of_week) <= 6  # 7 is folded into 0


TRANSITIONS = [
    datetime(2024, 3, 31, 1, tzinfo=UTC),  # Berlin spring forward
    datetime(2024, 10, 27, 1, tzinfo=UTC),  # Berlin fall back
    datetime(2024, 4, 6, 15, 0, tzinfo=UTC),  # Lord Howe: half an hour back
]


@settings(max_examples=60, deadline=None)
@given(
    minute=st.sampled_from(["*", "*/7", "*/30", "0", "30", "15-45/10"]),
    hour=st.sampled_from(["*", "1-3", "2", "*/2"]),
    zone=st.sampled_from([BERLIN, ZoneInfo("Australia/Lord_Howe")]),
    transition=st.sampled_from(TRANSITIONS),
    offset=st.integers(-180, 60),
)
def test_next_after_agrees_with_a_minute_by_minute_walk(
    minute: str, hour: str, zone: ZoneInfo, transition: datetime, offset: int
) -> None:
    """Due = the first instant at which the wall clock reads a matching time or later."""
    recurrence = parse_when(f"{minute} {hour} * * *")
    at = (transition + timedelta(minutes=offset, seconds=17)).astimezone(zone)
    instant = utc(at).replace(second=0) - timedelta(hours=6)
    reached = instant.astimezone(zone).replace(tzinfo=None)  # latest wall time read so far
    while True:
        instant += timedelta(minutes=1)
        wall = instant.astimezone(zone).replace(tzinfo=None)
        steps = (wall - reached) // timedelta(minutes=1)
        newly = [reached + timedelta(minutes=m + 1) for m in range(steps)]
        reached = max(reached, wall)
        if utc(instant) > utc(at) and any(recurrence.matches(w) for w in newly):
            break
    assert utc(recurrence.next_after(at)) == utc(instant)
