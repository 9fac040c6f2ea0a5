"""Office hours and the on-call roster (pure rules, and the roster query on the test database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.clock import OfficeHours, parse_closed_days
from bot.core.models import Counselor, CounselorRole
from bot.risk import oncall

NEW_YORK = ZoneInfo("America/New_York")


def _at(text: str, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_parse_a_week_range_and_a_single_day() -> None:
    week = OfficeHours.parse("Mon-Fri 08:00-18:00")
    assert week.days == frozenset(range(5)) and week.start == time(8) and week.end == time(18)
    assert OfficeHours.parse("sat 9:30-13:00").days == frozenset({5})
    # A range can wrap around the week.
    assert OfficeHours.parse("Fri-Mon 08:00-12:00").days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize(
    "text", ["", "weekdays 9-5", "Mon-Fry 08:00-18:00", "Mon-Fri 08:00-25:00", "Mon 08:00-08:00", "Mon 8-18"]
)
def test_parse_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError):
        OfficeHours.parse(text)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("2026-11-23 08:00", True),  # Monday, opening minute
        ("2026-11-23 07:59", False),
        ("2026-11-23 17:59", True),
        ("2026-11-23 18:00", False),  # the end is exclusive
        ("2026-11-28 12:00", False),  # Saturday
        ("2026-11-27 03:00", False),  # Friday night
    ],
)
def test_covers_in_the_clinic_time_zone(moment: str, inside: bool) -> None:
    hours = OfficeHours.parse("Mon-Fri 08:00-18:00")
    assert hours.covers(_at(moment), NEW_YORK) is inside
    # The same instant given in UTC gives the same answer.
    assert hours.covers(_at(moment).astimezone(UTC), NEW_YORK) is inside


def test_covers_across_the_end_of_daylight_saving_time() -> None:
    hours = OfficeHours.parse("Mon-Sun 08:00-18:00")
    # 13:30 UTC is 09:30 in New York in summer time and 08:30 after the change: open both days.
    assert hours.covers(datetime(2026, 10, 31, 13, 30, tzinfo=UTC), NEW_YORK)
    assert hours.covers(datetime(2026, 11, 2, 13, 30, tzinfo=UTC), NEW_YORK)
    # 12:30 UTC is 08:30 before and 07:30 after: open, then closed.
    assert hours.covers(datetime(2026, 10, 31, 12, 30, tzinfo=UTC), NEW_YORK)
    assert not hours.covers(datetime(2026, 11, 2, 12, 30, tzinfo=UTC), NEW_YORK)


def test_overnight_office_hours_belong_to_the_day_they_start() -> None:
    hours = OfficeHours.parse("Fri 20:00-06:00")
    assert hours.covers(_at("2026-11-27 21:00"), NEW_YORK)  # Friday evening
    assert hours.covers(_at("2026-11-28 05:00"), NEW_YORK)  # early Saturday, still Friday's shift
    assert not hours.covers(_at("2026-11-28 21:00"), NEW_YORK)  # Saturday evening
    assert not hours.covers(_at("2026-11-27 05:00"), NEW_YORK)  # early Friday belongs to Thursday


def test_a_closed_day_has_no_office_hours() -> None:
    christmas = frozenset({date(2026, 12, 25)})  # a Friday
    hours = replace(OfficeHours.parse("Mon-Fri 08:00-18:00"), closed=christmas)
    assert not hours.covers(_at("2026-12-25 10:00"), NEW_YORK)
    assert hours.covers(_at("2026-12-24 10:00"), NEW_YORK) and hours.covers(_at("2026-12-28 10:00"), NEW_YORK)
    # Overnight hours belong to the day they start: Christmas night's shift is closed to its end.
    nights = replace(OfficeHours.parse("Thu-Fri 20:00-06:00"), closed=christmas)
    assert nights.covers(_at("2026-12-25 05:00"), NEW_YORK)  # Thursday night's
    assert not nights.covers(_at("2026-12-25 21:00"), NEW_YORK)
    assert not nights.covers(_at("2026-12-26 05:00"), NEW_YORK)


def test_closed_days_are_read_from_dates_and_refuse_anything_else() -> None:
    assert parse_closed_days(" 2026-12-25, 2027-01-01 ,") == {date(2026, 12, 25), date(2027, 1, 1)}
    assert parse_closed_days("") == frozenset()
    for text in ("Dec 25", "2026-12-32", "2026-12-25 2027-01-01", "25/12/2026"):
        with pytest.raises(ValueError, match=r"is not a date: write .* as YYYY-MM-DD"):
            parse_closed_days(text)


def test_local_datetime_reads_clinic_time() -> None:
    assert oncall.local_datetime("2026-11-24 18:00", NEW_YORK) == _at("2026-11-24 18:00")
    with pytest.raises(ValueError, match="not a date and time"):
        oncall.local_datetime("tomorrow evening", NEW_YORK)


async def test_on_call_is_whoever_is_linked_active_and_in_a_shift(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    async with db.transaction(sessions) as session:
        people = [
            Counselor(
                name=name, role=CounselorRole.COUNSELOR, timezone="America/New_York", chat_id=chat, active=act
            )
            for name, chat, act in [
                ("On", 901, True),
                ("Later", 902, True),
                ("Unlinked", None, True),
                ("Gone", 904, False),
            ]
        ]
        session.add_all(people)
        await session.flush()
        on, later, unlinked, gone = (c.id for c in people)
        hour = timedelta(hours=1)
        await oncall.add_shift(session, on, now - hour, now + hour)
        await oncall.add_shift(session, on, now - 2 * hour, now + 2 * hour)  # overlapping shifts: once
        await oncall.add_shift(session, later, now + hour, now + 2 * hour)
        await oncall.add_shift(session, unlinked, now - hour, now + hour)
        with pytest.raises(ValueError, match="not active"):
            await oncall.add_shift(session, gone, now - hour, now + hour)
        with pytest.raises(ValueError, match="end after"):
            await oncall.add_shift(session, on, now, now)
    async with sessions() as session:
        assert [c.id for c in await oncall.on_call(session, now)] == [on]
        assert [c.id for c in await oncall.on_call(session, now + timedelta(minutes=90))] == [on, later]
        assert [s.counselor_id for s, _ in await oncall.shifts_from(session, now)] == [
            on,
            on,
            unlinked,
            later,
        ]
