from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import parse_offsets
from bot.schedule.reminder_times import in_quiet_hours, reminder_due

NY = "America/New_York"
LA = "America/Los_Angeles"
NO_QUIET = (time(0), time(0))
NIGHT = (time(22), time(7))
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def at(tz: str, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """An aware UTC instant from a local wall-clock time (which must exist and be unambiguous)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)


# --- whole days on the wall clock, other offsets in real time -----------------------------------------


@pytest.mark.parametrize("tz", [NY, LA])
def test_24h_reminder_across_spring_forward_is_same_local_time_23_hours_before(tz: str) -> None:
    session = at(tz, 2027, 3, 14, 18)  # Sunday, the day daylight saving starts

    due = reminder_due(session, DAY, tz, *NO_QUIET)

    assert local(due, tz) == datetime(2027, 3, 13, 18)
    assert session - due == timedelta(hours=23)


@pytest.mark.parametrize("tz", [NY, LA])
def test_24h_reminder_across_fall_back_is_same_local_time_25_hours_before(tz: str) -> None:
    session = at(tz, 2027, 11, 7, 18)  # Sunday, the day daylight saving ends

    due = reminder_due(session, DAY, tz, *NO_QUIET)

    assert local(due, tz) == datetime(2027, 11, 6, 18)
    assert session - due == timedelta(hours=25)


def test_48h_reminder_for_monday_session_after_spring_forward() -> None:
    session = at(NY, 2027, 3, 15, 18)

    due = reminder_due(session, 2 * DAY, NY, *NO_QUIET)

    assert local(due, NY) == datetime(2027, 3, 13, 18)
    assert due == utc(2027, 3, 13, 23)
    assert session - due == timedelta(hours=47)


def test_24h_reminder_on_an_ordinary_day_is_24_hours() -> None:
    session = at(NY, 2027, 6, 9, 18)

    assert reminder_due(session, DAY, NY, *NIGHT) == session - DAY


@pytest.mark.parametrize("tz", [NY, LA])
def test_1h_reminder_across_spring_forward_is_real_time(tz: str) -> None:
    session = at(tz, 2027, 3, 14, 3, 30)  # 03:30 daylight time, an hour after the clocks jumped

    due = reminder_due(session, HOUR, tz, *NO_QUIET)

    assert session - due == HOUR
    assert local(due, tz) == datetime(2027, 3, 14, 1, 30)  # two hours earlier on the wall clock


def test_1h_reminder_across_fall_back_is_real_time() -> None:
    session = utc(2027, 11, 7, 6, 30)  # 01:30 EST, the second 01:30 of the night

    due = reminder_due(session, HOUR, NY, *NO_QUIET)

    assert due == utc(2027, 11, 7, 5, 30)  # 01:30 EDT: the same wall-clock time, one real hour earlier
    assert local(due, NY) == datetime(2027, 11, 7, 1, 30)


def test_90_minutes_and_36_hours_are_real_time() -> None:
    session = at(NY, 2027, 3, 15, 18)

    assert reminder_due(session, timedelta(minutes=90), NY, *NO_QUIET) == session - timedelta(minutes=90)
    assert reminder_due(session, timedelta(hours=36), NY, *NO_QUIET) == session - timedelta(hours=36)


def test_whole_day_reminder_landing_in_the_gap_moves_forward() -> None:
    session = at(NY, 2027, 3, 15, 2, 30)  # Monday 02:30; Sunday 02:30 does not exist

    due = reminder_due(session, DAY, NY, *NO_QUIET)

    assert local(due, NY) == datetime(2027, 3, 14, 3, 30)
    assert due == utc(2027, 3, 14, 7, 30)


def test_whole_day_reminder_landing_on_an_ambiguous_time_takes_the_first() -> None:
    session = at(NY, 2027, 11, 8, 1, 30)  # Monday 01:30 EST; Sunday 01:30 happens twice

    due = reminder_due(session, DAY, NY, *NO_QUIET)

    assert due == utc(2027, 11, 7, 5, 30)  # the first 01:30 (EDT)
    assert session - due == timedelta(hours=25)


# --- quiet hours --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "quiet"),
    [
        (time(22), True),
        (time(23, 59), True),
        (time(0), True),
        (time(6, 59), True),
        (time(7), False),
        (time(12), False),
        (time(21, 59), False),
    ],
)
def test_in_quiet_hours_wrapping_midnight(clock: time, quiet: bool) -> None:
    assert in_quiet_hours(clock, *NIGHT) is quiet


def test_in_quiet_hours_same_day_and_none() -> None:
    afternoon = (time(13), time(15))
    assert in_quiet_hours(time(13), *afternoon)
    assert in_quiet_hours(time(14, 59), *afternoon)
    assert not in_quiet_hours(time(15), *afternoon)
    assert not in_quiet_hours(time(12, 59), *afternoon)
    assert not any(in_quiet_hours(time(hour), time(22), time(22)) for hour in range(24))


def test_in_quiet_hours_ignores_tzinfo_on_the_clock() -> None:
    assert in_quiet_hours(time(23, tzinfo=UTC), *NIGHT)


def test_reminder_in_evening_quiet_hours_moves_to_next_morning() -> None:
    session = at(NY, 2027, 6, 10, 9)

    due = reminder_due(session, timedelta(hours=10), NY, *NIGHT)  # 23:00 the evening before

    assert local(due, NY) == datetime(2027, 6, 10, 7)


def test_reminder_in_early_morning_quiet_hours_moves_to_end_of_quiet() -> None:
    session = at(NY, 2027, 6, 10, 7, 30)

    due = reminder_due(session, HOUR, NY, *NIGHT)  # 06:30: quiet, and 07:00 is still before the session

    assert local(due, NY) == datetime(2027, 6, 10, 7)


def test_whole_day_reminder_for_an_early_session_moves_within_the_previous_day() -> None:
    session = at(
        NY, 2027, 6, 10, 6
    )  # the session is in quiet hours, but the reminder's quiet period is the day before

    due = reminder_due(session, DAY, NY, *NIGHT)

    assert local(due, NY) == datetime(2027, 6, 9, 7)


def test_session_starting_within_the_same_quiet_period_keeps_the_computed_time() -> None:
    session = at(NY, 2027, 6, 10, 6)

    due = reminder_due(session, HOUR, NY, *NIGHT)

    assert local(due, NY) == datetime(2027, 6, 10, 5)


def test_reminder_is_not_moved_to_or_after_the_session_start() -> None:
    at_quiet_end = at(NY, 2027, 6, 10, 7)
    assert local(reminder_due(at_quiet_end, HOUR, NY, *NIGHT), NY) == datetime(2027, 6, 10, 6)

    shortly_after = at(NY, 2027, 6, 10, 7, 10)
    assert local(reminder_due(shortly_after, timedelta(minutes=30), NY, *NIGHT), NY) == datetime(
        2027, 6, 10, 7
    )


def test_same_day_quiet_hours() -> None:
    session = at(NY, 2027, 6, 10, 16)

    due = reminder_due(session, timedelta(hours=2), NY, time(13), time(15))

    assert local(due, NY) == datetime(2027, 6, 10, 15)


def test_quiet_end_on_spring_forward_night_is_local_wall_clock() -> None:
    session = at(NY, 2027, 3, 14, 9)

    due = reminder_due(session, timedelta(hours=8), NY, *NIGHT)  # 00:00 EST, quiet

    assert due == utc(2027, 3, 14, 11)  # 07:00 EDT, seven wall-clock but six real hours later
    assert local(due, NY) == datetime(2027, 3, 14, 7)


def test_quiet_end_on_fall_back_night_is_local_wall_clock() -> None:
    session = at(NY, 2027, 11, 7, 9)

    due = reminder_due(session, timedelta(hours=8), NY, *NIGHT)  # 01:00 EDT, quiet

    assert due == utc(2027, 11, 7, 12)  # 07:00 EST
    assert local(due, NY) == datetime(2027, 11, 7, 7)


def test_quiet_hours_are_the_patients_local_time() -> None:
    session = utc(2027, 6, 10, 15)  # 11:00 in New York, 08:00 in Los Angeles

    assert reminder_due(session, timedelta(hours=3), NY, *NIGHT) == utc(2027, 6, 10, 12)
    assert local(reminder_due(session, timedelta(hours=3), LA, *NIGHT), LA) == datetime(2027, 6, 10, 7)


def test_reminder_due_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="aware"):
        reminder_due(datetime(2027, 6, 10, 18), HOUR, NY, *NIGHT)
    with pytest.raises(ValueError, match="positive"):
        reminder_due(utc(2027, 6, 10, 18), timedelta(0), NY, *NIGHT)
    with pytest.raises(ValueError, match="unknown time zone"):
        reminder_due(utc(2027, 6, 10, 18), HOUR, "Eastern", *NIGHT)


# --- parse_offsets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h,1h", (DAY, HOUR)),
        ("1d, 90m, 30m", (DAY, timedelta(minutes=90), timedelta(minutes=30))),
        ("1h,24h,1h", (DAY, HOUR)),
        ("1d,24h,1440m", (DAY,)),
        ("1h30m", (timedelta(minutes=90),)),
        (" 2H , 45M ", (timedelta(hours=2), timedelta(minutes=45))),
        ("14d", (timedelta(days=14),)),
        ("48h,", (2 * DAY,)),
    ],
)
def test_parse_offsets(text: str, expected: tuple[timedelta, ...]) -> None:
    assert parse_offsets(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no reminder offsets"),
        (" , ", "no reminder offsets"),
        ("soon", "not understood"),
        ("24", "not understood"),
        ("1.5h", "not understood"),
        ("h", "not understood"),
        ("24h;1h", "not understood"),
        ("0h", "zero"),
        ("24h,0m", "zero"),
        ("-1h", "negative"),
        ("15d", "more than 14 days"),
        ("14d1m", "more than 14 days"),
        ("400h", "more than 14 days"),
    ],
)
def test_parse_offsets_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_offsets(text)
