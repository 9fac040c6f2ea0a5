from __future__ import annotations

import time as clock
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from bot.schedule.recurrence import Occurrence, Override, Series, occurrences, validate_rrule

NY = "America/New_York"
LA = "America/Los_Angeles"
GROUP = "FREQ=WEEKLY;BYDAY=MO,WE,TH"
THREE_HOURS = timedelta(hours=3)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def starts(result: list[Occurrence]) -> list[datetime]:
    return [occurrence.start for occurrence in result]


def local(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def group(tz: str = NY) -> Series:
    """The evening IOP group: Mon/Wed/Thu 18:00-21:00 from Monday 2027-03-01."""
    return Series(start=datetime(2027, 3, 1, 18), timezone=tz, duration=THREE_HOURS, rrule=GROUP)


# --- daylight saving: 18:00 local stays 18:00 local ---------------------------------------------------


@pytest.mark.parametrize(("tz", "winter_hour", "summer_hour"), [(NY, 23, 22), (LA, 2, 1)])
def test_weekly_group_keeps_local_time_across_spring_forward(
    tz: str, winter_hour: int, summer_hour: int
) -> None:
    # US daylight saving starts Sunday 2027-03-14.
    result = occurrences(group(tz), utc(2027, 3, 8), utc(2027, 3, 20))

    assert [local(s, tz) for s in starts(result)] == [
        datetime(2027, 3, 8, 18),
        datetime(2027, 3, 10, 18),
        datetime(2027, 3, 11, 18),
        datetime(2027, 3, 15, 18),
        datetime(2027, 3, 17, 18),
        datetime(2027, 3, 18, 18),
    ]
    day_shift = 1 if tz == LA else 0  # 18:00 in Los Angeles is the next day in UTC
    assert result[0].start == utc(2027, 3, 8 + day_shift, winter_hour)
    assert result[3].start == utc(2027, 3, 15 + day_shift, summer_hour)
    assert all(o.end - o.start == THREE_HOURS for o in result)
    assert all(o.original_start == o.start and o.title is None and o.location is None for o in result)


@pytest.mark.parametrize(("tz", "summer_hour", "winter_hour"), [(NY, 22, 23), (LA, 1, 2)])
def test_weekly_group_keeps_local_time_across_fall_back(tz: str, summer_hour: int, winter_hour: int) -> None:
    # US daylight saving ends Sunday 2027-11-07.
    result = occurrences(group(tz), utc(2027, 11, 1), utc(2027, 11, 13))

    assert [local(s, tz) for s in starts(result)] == [
        datetime(2027, 11, 1, 18),
        datetime(2027, 11, 3, 18),
        datetime(2027, 11, 4, 18),
        datetime(2027, 11, 8, 18),
        datetime(2027, 11, 10, 18),
        datetime(2027, 11, 11, 18),
    ]
    day_shift = 1 if tz == LA else 0
    assert result[2].start == utc(2027, 11, 4 + day_shift, summer_hour)
    assert result[3].start == utc(2027, 11, 8 + day_shift, winter_hour)
    assert [o.start.utcoffset() for o in result] == [timedelta(0)] * 6


def test_session_in_spring_forward_gap_moves_forward_by_the_gap() -> None:
    single = Series(start=datetime(2027, 3, 14, 2, 30), timezone=NY, duration=timedelta(hours=1))

    [occurrence] = occurrences(single, utc(2027, 3, 13), utc(2027, 3, 15))

    assert occurrence.start == utc(2027, 3, 14, 7, 30)
    assert local(occurrence.start, NY) == datetime(2027, 3, 14, 3, 30)
    assert occurrence.end == utc(2027, 3, 14, 8, 30)


def test_daily_02_30_series_across_spring_forward() -> None:
    daily = Series(
        start=datetime(2027, 3, 10, 2, 30), timezone=NY, duration=timedelta(hours=1), rrule="FREQ=DAILY"
    )

    result = occurrences(daily, utc(2027, 3, 13), utc(2027, 3, 16))

    assert [local(s, NY) for s in starts(result)] == [
        datetime(2027, 3, 13, 2, 30),
        datetime(2027, 3, 14, 3, 30),
        datetime(2027, 3, 15, 2, 30),
    ]


def test_ambiguous_fall_back_time_takes_the_first() -> None:
    single = Series(start=datetime(2027, 11, 7, 1, 30), timezone=NY, duration=timedelta(minutes=30))

    [occurrence] = occurrences(single, utc(2027, 11, 6), utc(2027, 11, 8))

    assert occurrence.start == utc(2027, 11, 7, 5, 30)  # 01:30 EDT, not 01:30 EST (06:30Z)


# --- rule parts ---------------------------------------------------------------------------------------


def test_count() -> None:
    result = occurrences(replace(group(), rrule=GROUP + ";COUNT=5"), utc(2027, 1, 1), utc(2028, 1, 1))

    assert [local(s, NY).date().isoformat() for s in starts(result)] == [
        "2027-03-01",
        "2027-03-03",
        "2027-03-04",
        "2027-03-08",
        "2027-03-10",
    ]


def test_utc_until_is_compared_as_an_instant_not_as_local_time() -> None:
    weekly = Series(start=datetime(2027, 12, 1, 18), timezone=NY, duration=THREE_HOURS, rrule="FREQ=WEEKLY")
    window = (utc(2027, 11, 1), utc(2028, 2, 1))

    # Wednesday 2027-12-15 18:00 EST is 23:00Z: UNTIL is inclusive.
    on_time = occurrences(replace(weekly, rrule="FREQ=WEEKLY;UNTIL=20271215T230000Z"), *window)
    assert [local(s, NY).day for s in starts(on_time)] == [1, 8, 15]
    # One second earlier excludes it (read wrongly as 22:59:59 local it would not).
    early = occurrences(replace(weekly, rrule="FREQ=WEEKLY;UNTIL=20271215T225959Z"), *window)
    assert [local(s, NY).day for s in starts(early)] == [1, 8]


def test_utc_until_in_summer() -> None:
    weekly = Series(
        start=datetime(2027, 6, 23, 18),
        timezone=LA,
        duration=THREE_HOURS,
        rrule="FREQ=WEEKLY;UNTIL=20270708T005959Z",  # 2027-07-07 17:59:59 PDT
    )

    result = occurrences(weekly, utc(2027, 6, 1), utc(2027, 8, 1))

    assert [local(s, LA).date().isoformat() for s in starts(result)] == ["2027-06-23", "2027-06-30"]


def test_local_and_date_until() -> None:
    window = (utc(2027, 3, 1), utc(2027, 4, 1))
    floating = occurrences(replace(group(), rrule=GROUP + ";UNTIL=20270308T180000"), *window)
    date_only = occurrences(replace(group(), rrule=GROUP + ";UNTIL=20270308"), *window)

    assert local(starts(floating)[-1], NY) == datetime(2027, 3, 8, 18)
    assert local(starts(date_only)[-1], NY) == datetime(2027, 3, 8, 18)  # a DATE UNTIL covers that whole day
    assert len(floating) == len(date_only) == 4


def test_interval_and_rrule_prefix() -> None:
    fortnightly = replace(group(), rrule="RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO")

    result = occurrences(fortnightly, utc(2027, 3, 1), utc(2027, 4, 1))

    assert [local(s, NY).day for s in starts(result)] == [1, 15, 29]


def test_dtstart_always_counts_even_off_rule() -> None:
    tuesday_start = replace(group(), start=datetime(2027, 3, 2, 18))

    result = occurrences(tuesday_start, utc(2027, 3, 1), utc(2027, 3, 8))

    assert [local(s, NY).day for s in starts(result)] == [2, 3, 4]


# --- exdates, rdates, overrides -----------------------------------------------------------------------


def test_exdates_and_rdates() -> None:
    series = replace(
        group(),
        exdates=(
            datetime(2027, 3, 3, 18),
            datetime(2027, 3, 9, 18),
        ),  # the second is not an occurrence anyway
        rdates=(datetime(2027, 3, 6, 10), datetime(2027, 3, 4, 18)),  # the second duplicates one
    )

    result = occurrences(series, utc(2027, 3, 1), utc(2027, 3, 8))

    assert [local(s, NY) for s in starts(result)] == [
        datetime(2027, 3, 1, 18),
        datetime(2027, 3, 4, 18),
        datetime(2027, 3, 6, 10),
    ]
    assert result[-1].end == result[-1].start + THREE_HOURS


def test_exdate_given_aware_is_matched_in_local_time() -> None:
    series = replace(group(), exdates=(utc(2027, 3, 3, 23),))

    result = occurrences(series, utc(2027, 3, 1), utc(2027, 3, 6))

    assert [local(s, NY).day for s in starts(result)] == [1, 4]


def test_moved_override_keeps_identity_and_changes() -> None:
    moved = Override(
        original_start=datetime(2027, 3, 10, 18),
        start=datetime(2027, 3, 9, 17),
        end=datetime(2027, 3, 9, 19),
        location="Community Hall",
        title="Evening IOP group (moved)",
    )

    result = occurrences(replace(group(), overrides=(moved,)), utc(2027, 3, 8), utc(2027, 3, 12))

    assert [local(s, NY) for s in starts(result)] == [
        datetime(2027, 3, 8, 18),
        datetime(2027, 3, 9, 17),
        datetime(2027, 3, 11, 18),
    ]
    changed = result[1]
    assert changed.original_start == utc(2027, 3, 10, 23)
    assert changed.end == utc(2027, 3, 10, 0)  # 19:00 EST
    assert (changed.title, changed.location) == ("Evening IOP group (moved)", "Community Hall")


def test_override_moved_into_the_window_from_far_outside() -> None:
    moved = Override(original_start=datetime(2027, 3, 1, 18), start=datetime(2027, 6, 5, 10), end=None)

    result = occurrences(replace(group(), overrides=(moved,)), utc(2027, 6, 5), utc(2027, 6, 6))

    assert len(result) == 1
    assert result[0].start == utc(2027, 6, 5, 14)
    assert result[0].end == utc(2027, 6, 5, 17)  # no end given: start + series duration
    assert result[0].original_start == utc(2027, 3, 1, 23)


def test_override_moved_out_of_the_window() -> None:
    moved = Override(original_start=datetime(2027, 3, 10, 18), start=datetime(2027, 4, 20, 18), end=None)
    series = replace(group(), overrides=(moved,))

    assert [local(s, NY).day for s in starts(occurrences(series, utc(2027, 3, 8), utc(2027, 3, 12)))] == [
        8,
        11,
    ]
    [later] = [
        o for o in occurrences(series, utc(2027, 4, 20), utc(2027, 4, 21)) if o.start != o.original_start
    ]
    assert later.original_start == utc(2027, 3, 10, 23)
    assert later.start == utc(2027, 4, 20, 22)


def test_override_changing_only_details_keeps_the_time() -> None:
    renamed = Override(original_start=datetime(2027, 3, 3, 18), start=None, end=None, location="Room 5")

    [occurrence] = occurrences(replace(group(), overrides=(renamed,)), utc(2027, 3, 3), utc(2027, 3, 4))

    assert occurrence.start == occurrence.original_start == utc(2027, 3, 3, 23)
    assert occurrence.end == utc(2027, 3, 4, 2)
    assert occurrence.location == "Room 5"
    assert occurrence.title is None


def test_cancelled_override_removes_the_occurrence() -> None:
    cancelled = Override(original_start=datetime(2027, 3, 3, 18), start=None, end=None, cancelled=True)

    result = occurrences(replace(group(), overrides=(cancelled,)), utc(2027, 3, 1), utc(2027, 3, 6))

    assert [local(s, NY).day for s in starts(result)] == [1, 4]


def test_override_of_a_non_occurrence_is_an_extra_session() -> None:
    extra = Override(original_start=datetime(2027, 3, 2, 18), start=None, end=datetime(2027, 3, 2, 19))

    result = occurrences(replace(group(), overrides=(extra,)), utc(2027, 3, 1), utc(2027, 3, 6))

    assert [local(s, NY).day for s in starts(result)] == [1, 2, 3, 4]
    assert result[1].end - result[1].start == timedelta(hours=1)


def test_exdate_wins_over_an_override() -> None:
    moved = Override(original_start=datetime(2027, 3, 3, 18), start=datetime(2027, 3, 2, 18), end=None)

    result = occurrences(
        replace(group(), exdates=(datetime(2027, 3, 3, 18),), overrides=(moved,)),
        utc(2027, 3, 1),
        utc(2027, 3, 6),
    )

    assert [local(s, NY).day for s in starts(result)] == [1, 4]


def test_sorted_by_start_when_an_override_moves_earlier() -> None:
    moved = Override(original_start=datetime(2027, 3, 4, 18), start=datetime(2027, 3, 1, 9), end=None)

    result = occurrences(replace(group(), overrides=(moved,)), utc(2027, 3, 1), utc(2027, 3, 6))

    assert starts(result) == sorted(starts(result))
    assert local(result[0].start, NY) == datetime(2027, 3, 1, 9)


# --- window and single events -------------------------------------------------------------------------


def test_window_is_half_open() -> None:
    first = utc(2027, 3, 1, 23)
    series = group()

    assert starts(occurrences(series, first, first + timedelta(seconds=1))) == [first]
    assert occurrences(series, first - timedelta(hours=1), first) == []
    assert occurrences(series, first + timedelta(seconds=1), utc(2027, 3, 3, 23)) == []


def test_occurrence_running_into_the_window_is_not_included() -> None:
    # Only the start counts: the 18:00-21:00 session is not "in" a window that starts at 19:00.
    assert occurrences(group(), utc(2027, 3, 2, 0), utc(2027, 3, 3)) == []


def test_non_recurring_series_with_rdates() -> None:
    single = Series(
        start=datetime(2027, 11, 6, 14),
        timezone=NY,
        duration=timedelta(minutes=90),
        rdates=(datetime(2027, 11, 13, 14),),
    )

    result = occurrences(single, utc(2027, 1, 1), utc(2028, 1, 1))

    assert starts(result) == [utc(2027, 11, 6, 18), utc(2027, 11, 13, 19)]
    assert result[0].end == utc(2027, 11, 6, 19, 30)
    assert occurrences(single, utc(2027, 11, 7), utc(2027, 11, 8)) == []


def test_series_starting_after_the_window() -> None:
    assert occurrences(group(), utc(2027, 1, 1), utc(2027, 2, 1)) == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="aware"):
        occurrences(group(), datetime(2027, 3, 1), datetime(2027, 3, 8))
    with pytest.raises(ValueError, match="unknown time zone"):
        occurrences(group("Eastern"), utc(2027, 3, 1), utc(2027, 3, 8))


# --- efficiency ---------------------------------------------------------------------------------------


def test_unbounded_rules_do_not_hang() -> None:
    started = clock.perf_counter()
    daily = Series(start=datetime(1990, 1, 1, 18), timezone=NY, duration=THREE_HOURS, rrule="FREQ=DAILY")
    every_15 = Series(
        start=datetime(2000, 1, 1, 8),
        timezone=NY,
        duration=timedelta(minutes=10),
        rrule="FREQ=MINUTELY;INTERVAL=15",
    )

    assert len(occurrences(daily, utc(2027, 3, 1), utc(2027, 3, 9))) == 8
    assert len(occurrences(every_15, utc(2027, 3, 1, 5), utc(2027, 3, 2, 5))) == 96
    assert len(occurrences(group(), utc(2090, 1, 1), utc(2090, 1, 9))) == 3
    assert clock.perf_counter() - started < 2


def test_weekly_series_over_90_days_in_an_8_day_window() -> None:
    series = replace(group(), start=datetime(2027, 1, 4, 18), rrule=GROUP + ";UNTIL=20270404T000000Z")

    result = occurrences(series, utc(2027, 2, 15), utc(2027, 2, 23))

    assert [local(s, NY).day for s in starts(result)] == [15, 17, 18, 22]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;INTERVAL=3",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,FR",
        "FREQ=WEEKLY;INTERVAL=3;BYDAY=SU,SA;WKST=MO",
        "FREQ=WEEKLY;INTERVAL=2",
        "FREQ=HOURLY;INTERVAL=5;BYHOUR=8,13,18",
        "FREQ=DAILY;BYDAY=MO,WE;BYMONTH=3,11",
        "FREQ=MONTHLY;BYDAY=2WE",
        "FREQ=WEEKLY;BYDAY=MO;UNTIL=20270310T000000Z",
    ],
)
def test_matches_full_expansion_from_the_first_start(rule: str) -> None:
    """The shortcut that skips ahead through long-running series gives exactly dateutil's full expansion."""
    start = datetime(2019, 5, 7, 18)
    series = Series(start=start, timezone=NY, duration=THREE_HOURS, rrule=rule)
    window_start, window_end = utc(2027, 3, 1), utc(2027, 4, 15)
    full_rule = rule.replace(";UNTIL=20270310T000000Z", ";UNTIL=20270309T190000")
    tz = ZoneInfo(NY)
    expected = sorted(
        {
            start,
            *rrulestr(full_rule, dtstart=start).between(
                datetime(2027, 2, 27), datetime(2027, 4, 17), inc=True
            ),
        }
    )
    expected_utc = [
        s.replace(tzinfo=tz).astimezone(UTC)
        for s in expected
        if window_start <= s.replace(tzinfo=tz) < window_end
    ]

    assert starts(occurrences(series, window_start, window_end)) == expected_utc


# --- validate_rrule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        GROUP,
        GROUP + ";UNTIL=20270301T000000Z",
        "FREQ=WEEKLY;BYDAY=MO,WE,TH;UNTIL=20271217T045959Z",
        "freq=weekly;byday=tu;count=12",
        "RRULE:FREQ=DAILY;INTERVAL=2",
        "FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20271231",
    ],
)
def test_validate_rrule_accepts_good_rules(rule: str) -> None:
    validate_rrule(rule, datetime(2027, 2, 1, 18))
    validate_rrule(rule, datetime(2027, 2, 1, 18, tzinfo=ZoneInfo(NY)))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "empty"),
        ("BYDAY=MO", "no FREQ"),
        ("FREQ=FORTNIGHTLY", "unknown FREQ"),
        ("FREQ=WEEKLY;BYDAY=XX", "not valid"),
        ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL"),
        ("FREQ=WEEKLY;COUNT=0", "COUNT"),
        ("FREQ=WEEKLY;COUNT=-2", "COUNT"),
        ("FREQ=WEEKLY;UNTIL=next-month", "UNTIL"),
        ("FREQ=WEEKLY;FOO=1", "not valid"),
        ("FREQ=WEEKLY;BYDAY", "malformed"),
        ("FREQ=WEEKLY;FREQ=DAILY", "twice"),
        ("FREQ=WEEKLY\nEXDATE:20270301T180000", "single RRULE"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "no sessions"),
        ("FREQ=WEEKLY;UNTIL=20260101T000000Z", "no sessions"),
    ],
)
def test_validate_rrule_rejects_bad_rules(rule: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_rrule(rule, datetime(2027, 2, 1, 18))


def test_validate_rrule_uses_the_zone_of_an_aware_start_for_utc_until() -> None:
    # 18:00 New York on 2027-02-01 is 23:00Z: an UNTIL of 22:00Z ends the rule before its first session.
    with pytest.raises(ValueError, match="no sessions"):
        validate_rrule("FREQ=DAILY;UNTIL=20270201T220000Z", datetime(2027, 2, 1, 18, tzinfo=ZoneInfo(NY)))
    validate_rrule("FREQ=DAILY;UNTIL=20270201T230000Z", datetime(2027, 2, 1, 18, tzinfo=ZoneInfo(NY)))


def test_duration_ends_on_the_local_wall_clock() -> None:
    overnight = Series(start=datetime(2027, 11, 6, 23), timezone=NY, duration=timedelta(hours=4))

    [occurrence] = occurrences(overnight, utc(2027, 11, 6), utc(2027, 11, 8))

    assert local(occurrence.end, NY).time() == time(3)  # 03:00 local: five real hours on the fall-back night
    assert occurrence.end - occurrence.start == timedelta(hours=5)
