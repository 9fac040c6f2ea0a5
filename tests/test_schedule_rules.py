"""Groups, sessions, answers and reminder planning (bot/schedule/rules.py) on the test database.

The main fixture is an evening group meeting Mon/Wed/Thu 18:00 New York time with one patient in New York
and one in Los Angeles (where the session is at 15:00). Dates are in March 2027: US daylight-saving time
starts on Sunday 2027-03-14, so Mon 03-08 18:00 EST is 23:00 UTC and Mon 03-15 18:00 EDT is 22:00 UTC."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.models import (
    AssignmentRole,
    Counselor,
    OutboxMessage,
    OutboxStatus,
    Patient,
    PatientStatus,
    ProgramSession,
    Rsvp,
    SessionKind,
)
from bot.core.people import assigned_counselors
from bot.outbox import store as outbox
from bot.schedule import callbacks
from bot.schedule import rules as schedule
from bot.schedule.ical_import import parse_calendar
from bot.schedule.recurrence import to_local
from bot.schedule.rules import ScheduleError
from tests.records import add_counselor, add_patient, assign

Sessions = async_sessionmaker[AsyncSession]

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
DAY, HOUR = timedelta(hours=24), timedelta(hours=1)
OFFSETS = (DAY, HOUR)
AHEAD = timedelta(minutes=15)
GROUP = "Evening IOP Mon/Wed/Thu"
CALENDAR = Path(__file__).parent / "data" / "iop_calendar.ics"


def ny(text: str) -> datetime:
    """An instant given as New York wall-clock time, in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=NY).astimezone(UTC)


@dataclass(frozen=True)
class Evening:
    session_id: int
    ny: Patient
    la: Patient

    def key(self, start: str, patient: Patient, offset: timedelta) -> str:
        return schedule.reminder_key(self.session_id, ny(start), patient.id, offset)


async def _evening_group(sessions: Sessions) -> Evening:
    in_ny = await add_patient(sessions, timezone="America/New_York")
    in_la = await add_patient(sessions, timezone="America/Los_Angeles")
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, GROUP, create=True)
        program = await schedule.add_session(
            session,
            title="Evening IOP group",
            kind=SessionKind.GROUP,
            starts_local=datetime(2027, 3, 1, 18, 0),
            timezone="America/New_York",
            duration=timedelta(hours=3),
            rrule="FREQ=WEEKLY;BYDAY=MO,WE,TH",
            group=group,
        )
        assert await schedule.join_group(session, group, in_ny)
        assert await schedule.join_group(session, group, in_la)
        assert not await schedule.join_group(session, group, in_la)
    return Evening(program.id, in_ny, in_la)


async def _due(sessions: Sessions, now: datetime) -> dict[str, datetime]:
    async with sessions() as session:
        found = await schedule.due_reminders(session, now, OFFSETS, ahead=AHEAD)
    return {d.key: d.due_at for d in found}


async def _plan(sessions: Sessions, now: datetime) -> int:
    async with db.transaction(sessions) as session:
        found = await schedule.due_reminders(session, now, OFFSETS, ahead=AHEAD)
        return await outbox.enqueue(
            session,
            [
                outbox.Planned(
                    key=d.key,
                    kind=schedule.REMINDER_KIND,
                    chat_id=d.patient.chat_id,
                    text="x",
                    due_at=d.due_at,
                    patient_id=d.patient.id,
                )
                for d in found
            ],
        )


async def _planned_keys(sessions: Sessions) -> set[str]:
    """The keys of the reminders still waiting to go out."""
    async with sessions() as session:
        query = select(OutboxMessage.key).where(OutboxMessage.status == OutboxStatus.PENDING)
        return set(await session.scalars(query))


async def test_day_before_reminder_is_at_the_session_clock_time_in_each_patients_zone(
    sessions: Sessions,
) -> None:
    g = await _evening_group(sessions)
    # Tuesday 17:50 New York: the 24 h reminders for Wednesday's 18:00 session fall due at 18:00.
    due = await _due(sessions, ny("2027-03-09 17:50"))
    assert due == {
        g.key("2027-03-10 18:00", g.ny, DAY): ny("2027-03-09 18:00"),
        g.key("2027-03-10 18:00", g.la, DAY): ny("2027-03-09 18:00"),
    }
    assert to_local(due[g.key("2027-03-10 18:00", g.ny, DAY)], NY) == datetime(2027, 3, 9, 18, 0)
    assert to_local(due[g.key("2027-03-10 18:00", g.la, DAY)], LA) == datetime(2027, 3, 9, 15, 0)
    assert await _due(sessions, ny("2027-03-09 17:40")) == {}  # 18:00 is not within the next 15 minutes
    assert await _due(sessions, ny("2027-03-10 12:00")) == {}
    # Wednesday 16:50: the 1 h reminders, 17:00 New York = 14:00 Los Angeles.
    due = await _due(sessions, ny("2027-03-10 16:50"))
    assert due == {
        g.key("2027-03-10 18:00", g.ny, HOUR): ny("2027-03-10 17:00"),
        g.key("2027-03-10 18:00", g.la, HOUR): ny("2027-03-10 17:00"),
    }
    assert to_local(due[g.key("2027-03-10 18:00", g.la, HOUR)], LA) == datetime(2027, 3, 10, 14, 0)
    assert g.key("2027-03-10 18:00", g.ny, DAY) == (
        f"rem:{g.session_id}:{callbacks.occurrence_id(ny('2027-03-10 18:00'))}:{g.ny.id}:1440"
    )


async def test_planning_twice_creates_nothing_new(sessions: Sessions) -> None:
    g = await _evening_group(sessions)
    now = ny("2027-03-09 17:50")
    assert await _plan(sessions, now) == 2
    assert await _due(sessions, now) == {}
    assert await _plan(sessions, now) == 0
    assert await _plan(sessions, now + timedelta(minutes=5)) == 0
    assert await _planned_keys(sessions) == {
        g.key("2027-03-10 18:00", g.ny, DAY),
        g.key("2027-03-10 18:00", g.la, DAY),
    }


async def test_patients_not_active_or_unreachable_get_no_reminders(sessions: Sessions) -> None:
    g = await _evening_group(sessions)
    others = [
        await add_patient(sessions, timezone="America/New_York", status=PatientStatus.DISCHARGED),
        await add_patient(sessions, timezone="America/New_York", status=PatientStatus.ONBOARDING),
        await add_patient(sessions, timezone="America/New_York", unreachable_since=ny("2027-03-01 09:00")),
    ]
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, GROUP)
        for patient in others:
            await schedule.join_group(session, group, patient)
    due = await _due(sessions, ny("2027-03-09 17:50"))
    assert set(due) == {g.key("2027-03-10 18:00", g.ny, DAY), g.key("2027-03-10 18:00", g.la, DAY)}


async def test_cannot_make_it_stops_that_occurrences_reminders_only(sessions: Sessions) -> None:
    g = await _evening_group(sessions)
    assert await _plan(sessions, ny("2027-03-09 17:50")) == 2  # Wednesday's 24 h reminders
    assert await _plan(sessions, ny("2027-03-10 16:50")) == 2  # and its 1 h reminders
    now = ny("2027-03-10 16:55")
    async with db.transaction(sessions) as session:
        found = await schedule.find_occurrence(session, g.ny.id, g.session_id, ny("2027-03-10 18:00"))
        assert found is not None
        row = await schedule.answer(session, g.ny, found, Rsvp.CANNOT, now)
        assert row.awaiting_reason and row.response is Rsvp.CANNOT
    async with sessions() as session:
        waiting = await schedule.awaiting_reason(session, g.ny.id, now, within=timedelta(minutes=10))
        assert waiting is not None and waiting.occurrence == ny("2027-03-10 18:00")
    assert await _planned_keys(sessions) == {
        g.key("2027-03-10 18:00", g.la, DAY),
        g.key("2027-03-10 18:00", g.la, HOUR),
    }
    # Nothing is planned again for that occurrence, on time or late; Thursday's reminders are unaffected.
    assert await _due(sessions, ny("2027-03-10 16:50")) == {}
    assert await _due(sessions, ny("2027-03-10 17:30")) == {}
    assert await _due(sessions, ny("2027-03-10 17:50")) == {
        g.key("2027-03-11 18:00", g.ny, DAY): ny("2027-03-10 18:00"),
        g.key("2027-03-11 18:00", g.la, DAY): ny("2027-03-10 18:00"),
    }
    # A time that is not one of its occurrences is refused, not "cancelled".
    async with db.transaction(sessions) as session:
        program = await session.get_one(ProgramSession, g.session_id)
        with pytest.raises(schedule.ScheduleError, match="no occurrence"):
            await schedule.cancel_occurrence(session, program, datetime(2027, 3, 10, 19, 0))


async def test_after_downtime_only_the_latest_missed_reminder_and_none_once_started(
    sessions: Sessions,
) -> None:
    g = await _evening_group(sessions)
    # Down since Tuesday: at Wednesday 17:30 both the 24 h (Tue 18:00) and 1 h (Wed 17:00) times have passed.
    assert await _due(sessions, ny("2027-03-10 17:30")) == {
        g.key("2027-03-10 18:00", g.ny, HOUR): ny("2027-03-10 17:00"),
        g.key("2027-03-10 18:00", g.la, HOUR): ny("2027-03-10 17:00"),
    }
    # At 18:00 the session has started: nothing for it (only Thursday's 24 h reminders, due right now).
    assert await _due(sessions, ny("2027-03-10 18:00")) == {
        g.key("2027-03-11 18:00", g.ny, DAY): ny("2027-03-10 18:00"),
        g.key("2027-03-11 18:00", g.la, DAY): ny("2027-03-10 18:00"),
    }
    assert await _due(sessions, ny("2027-03-10 18:30")) == {}


async def test_spring_forward_keeps_sessions_and_day_reminders_on_the_local_clock(sessions: Sessions) -> None:
    g = await _evening_group(sessions)
    async with sessions() as session:
        program = await session.get_one(ProgramSession, g.session_id)
    week = schedule.expand([program], ny("2027-03-08 00:00"), ny("2027-03-19 00:00"))
    assert [u.occurrence.start for u in week] == [
        datetime(2027, 3, day, hour, tzinfo=UTC)
        for day, hour in [(8, 23), (10, 23), (11, 23), (15, 22), (17, 22), (18, 22)]
    ]
    assert {to_local(u.occurrence.start, NY).time() for u in week} == {time(18, 0)}
    assert {u.title for u in week} == {"Evening IOP group"}
    # Monday 03-15's 24 h reminder: Sunday 18:00 EDT in New York, 15:00 PDT in Los Angeles.
    due = await _due(sessions, ny("2027-03-14 17:50"))
    assert due == {
        g.key("2027-03-15 18:00", g.ny, DAY): ny("2027-03-14 18:00"),
        g.key("2027-03-15 18:00", g.la, DAY): ny("2027-03-14 18:00"),
    }
    assert to_local(due[g.key("2027-03-15 18:00", g.la, DAY)], LA) == datetime(2027, 3, 14, 15, 0)


async def test_a_day_reminder_across_the_change_is_23_real_hours(sessions: Sessions) -> None:
    """A session on the Sunday the clocks go forward: its 24 h reminder is Saturday 18:00 EST (23 real hours
    earlier) for a New York patient, but Saturday 22:00 UTC (24 hours) for a patient who lives on UTC."""
    in_ny = await add_patient(sessions, timezone="America/New_York")
    on_utc = await add_patient(sessions, timezone="UTC", quiet_start=time(0), quiet_end=time(0))
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, "Family day", create=True)
        program = await schedule.add_session(
            session,
            title="Family day",
            kind=SessionKind.FAMILY,
            starts_local=datetime(2027, 3, 14, 18, 0),
            timezone="America/New_York",
            duration=timedelta(hours=2),
            group=group,
        )
        for patient in (in_ny, on_utc):
            await schedule.join_group(session, group, patient)
    start = ny("2027-03-14 18:00")
    assert start == datetime(2027, 3, 14, 22, 0, tzinfo=UTC)
    assert await _due(sessions, ny("2027-03-13 17:50")) == {
        schedule.reminder_key(program.id, start, in_ny.id, DAY): ny("2027-03-13 18:00"),
    }
    assert start - ny("2027-03-13 18:00") == timedelta(hours=23)
    assert await _due(sessions, datetime(2027, 3, 13, 21, 50, tzinfo=UTC)) == {
        schedule.reminder_key(program.id, start, on_utc.id, DAY): start - DAY,
    }


async def test_quiet_hours_move_a_reminder_to_their_end(sessions: Sessions) -> None:
    quiet = await add_patient(sessions, timezone="America/New_York", quiet_start=time(22), quiet_end=time(7))
    awake = await add_patient(sessions, timezone="America/New_York", quiet_start=time(0), quiet_end=time(0))
    ids = {}
    async with db.transaction(sessions) as session:
        for patient in (quiet, awake):
            program = await schedule.add_session(
                session,
                title="Individual therapy",
                kind=SessionKind.INDIVIDUAL,
                starts_local=datetime(2027, 3, 16, 7, 30),
                timezone="America/New_York",
                duration=timedelta(minutes=50),
                patient=patient,
            )
            ids[patient.id] = program.id
    start = ny("2027-03-16 07:30")

    def key(patient: Patient) -> str:
        return schedule.reminder_key(ids[patient.id], start, patient.id, HOUR)

    # 06:30 is inside 22:00-07:00 for the first patient: the 1 h reminder goes at 07:00 instead.
    assert await _due(sessions, ny("2027-03-16 06:25")) == {key(awake): ny("2027-03-16 06:30")}
    assert await _plan(sessions, ny("2027-03-16 06:25")) == 1
    assert await _due(sessions, ny("2027-03-16 06:55")) == {key(quiet): ny("2027-03-16 07:00")}


async def test_find_occurrence_refuses_forged_or_foreign_occurrences(sessions: Sessions) -> None:
    g = await _evening_group(sessions)
    async with db.transaction(sessions) as session:
        morning = await schedule.add_session(
            session,
            title="Morning group",
            kind=SessionKind.GROUP,
            starts_local=datetime(2027, 3, 1, 9, 0),
            timezone="America/New_York",
            duration=timedelta(hours=3),
            rrule="FREQ=DAILY",
            group=await schedule.group_named(session, "Morning", create=True),
        )
    real = ny("2027-03-10 18:00")
    assert callbacks.from_occurrence_id(callbacks.occurrence_id(real)) == real
    async with sessions() as session:
        found = await schedule.find_occurrence(session, g.ny.id, g.session_id, real)
        assert found is not None and found.occurrence.start == real and found.session.id == g.session_id
        assert (
            await schedule.find_occurrence(session, g.ny.id, g.session_id, real + timedelta(minutes=1))
            is None
        )
        assert await schedule.find_occurrence(session, g.ny.id, g.session_id, ny("2027-03-09 18:00")) is None
        # A real occurrence of another group's session is not this patient's.
        assert await schedule.find_occurrence(session, g.ny.id, morning.id, ny("2027-03-10 09:00")) is None
        assert await schedule.find_occurrence(session, g.ny.id, 987_654, real) is None


async def test_import_is_idempotent_and_an_edited_event_is_replanned(sessions: Sessions) -> None:
    member = await add_patient(sessions, timezone="America/New_York")
    events = parse_calendar(CALENDAR.read_bytes(), "America/New_York")
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, "Imported", create=True)
        await schedule.join_group(session, group, member)
        assert await schedule.import_events(session, events, group) == schedule.Imported(created=3, updated=0)
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, "Imported")
        assert await schedule.import_events(session, events, group) == schedule.Imported(created=0, updated=0)
        by_title = {p.title: p for p in await session.scalars(select(ProgramSession))}
    assert set(by_title) == {"Evening IOP group", "Medication management", "Family therapy"}
    evening, medication = by_title["Evening IOP group"], by_title["Medication management"]
    assert (evening.starts_local, evening.timezone) == (datetime(2027, 3, 1, 18, 0), "America/New_York")

    now = ny("2027-03-09 17:50")
    evening_key = schedule.reminder_key(evening.id, ny("2027-03-10 18:00"), member.id, DAY)
    medication_key = schedule.reminder_key(medication.id, ny("2027-03-16 10:00"), member.id, DAY)
    assert await _plan(sessions, now) == 1
    async with db.transaction(sessions) as session:
        row = outbox.Planned(
            medication_key, schedule.REMINDER_KIND, member.chat_id, "x", ny("2027-03-15 10:00")
        )
        await outbox.enqueue(session, [row])
    assert await _planned_keys(sessions) == {evening_key, medication_key}

    edited = [
        dataclasses.replace(e, title="Evening IOP group (Room C)") if e.uid == evening.uid else e
        for e in events
    ]
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, "Imported")
        assert await schedule.import_events(session, edited, group) == schedule.Imported(created=0, updated=1)
    assert await _planned_keys(sessions) == {medication_key}
    async with sessions() as session:
        assert (await session.get_one(ProgramSession, evening.id)).title == "Evening IOP group (Room C)"
        assert await session.scalar(select(func.count()).select_from(ProgramSession)) == 3
    assert await _due(sessions, now) == {evening_key: ny("2027-03-09 18:00")}

    # An event deleted from the calendar goes from the schedule at the next import, reminders and all.
    without_medication = [e for e in edited if e.uid != medication.uid]
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, "Imported")
        result = await schedule.import_events(session, without_medication, group)
    assert result == schedule.Imported(created=0, updated=0, removed=1)
    assert medication_key not in await _planned_keys(sessions)
    async with sessions() as session:
        assert not (await session.get_one(ProgramSession, medication.id)).active


async def test_leave_group_forgets_the_patients_pending_reminders(sessions: Sessions) -> None:
    g = await _evening_group(sessions)
    now = ny("2027-03-09 17:50")
    assert await _plan(sessions, now) == 2
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, GROUP)
        assert await schedule.leave_group(session, group, g.ny) is True
        assert await schedule.leave_group(session, group, g.ny) is False
    assert await _planned_keys(sessions) == {g.key("2027-03-10 18:00", g.la, DAY)}
    assert await _due(sessions, now) == {}
    async with sessions() as session:
        assert await schedule.sessions_of(session, g.ny.id) == []
        assert [p.id for p in await schedule.sessions_of(session, g.la.id)] == [g.session_id]


@pytest.mark.parametrize(
    ("for_group", "for_patient", "starts_local", "rrule"),
    [
        (True, True, datetime(2027, 3, 1, 18), None),
        (False, False, datetime(2027, 3, 1, 18), None),
        (True, False, datetime(2027, 3, 1, 18), "FREQ=FORTNIGHTLY"),
        (True, False, datetime(2027, 3, 1, 18), "FREQ=WEEKLY;BYDAY=XX"),
        (True, False, datetime(2027, 3, 1, 18, tzinfo=NY), None),
    ],
    ids=["group-and-patient", "neither", "unknown-freq", "bad-byday", "aware-start"],
)
async def test_add_session_refuses_bad_input(
    sessions: Sessions, for_group: bool, for_patient: bool, starts_local: datetime, rrule: str | None
) -> None:
    patient = await add_patient(sessions)
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, GROUP, create=True)
        with pytest.raises(ScheduleError):
            await schedule.add_session(
                session,
                title="Evening IOP group",
                kind=SessionKind.GROUP,
                starts_local=starts_local,
                timezone="America/New_York",
                duration=timedelta(hours=3),
                rrule=rrule,
                group=group if for_group else None,
                patient=patient if for_patient else None,
            )
        assert await session.scalar(select(func.count()).select_from(ProgramSession)) == 0


async def test_cancel_occurrence_takes_it_off_the_schedule(sessions: Sessions) -> None:
    g = await _evening_group(sessions)
    assert await _plan(sessions, ny("2027-03-09 17:50")) == 2
    async with db.transaction(sessions) as session:
        program = await session.get_one(ProgramSession, g.session_id)
        await schedule.cancel_occurrence(session, program, datetime(2027, 3, 10, 18, 0))
    assert await _planned_keys(sessions) == set()
    async with sessions() as session:
        week = await schedule.upcoming(session, g.ny.id, ny("2027-03-08 00:00"), ny("2027-03-13 00:00"))
    assert [u.occurrence.start for u in week] == [ny("2027-03-08 18:00"), ny("2027-03-11 18:00")]
    assert await _due(sessions, ny("2027-03-09 17:50")) == {}
    assert await _due(sessions, ny("2027-03-10 17:50")) == {
        g.key("2027-03-11 18:00", g.ny, DAY): ny("2027-03-10 18:00"),
        g.key("2027-03-11 18:00", g.la, DAY): ny("2027-03-10 18:00"),
    }
    # A time that is not one of its occurrences is refused, not "cancelled".
    async with db.transaction(sessions) as session:
        program = await session.get_one(ProgramSession, g.session_id)
        with pytest.raises(schedule.ScheduleError, match="no occurrence"):
            await schedule.cancel_occurrence(session, program, datetime(2027, 3, 10, 19, 0))


async def test_the_assigned_counselor_is_the_primary_one(sessions: Sessions) -> None:
    """ "Can't make it" goes to the patient's primary counselor; to the whole team only if none is linked."""
    primary = await add_counselor(sessions, "Dana", linked=True)
    backup = await add_counselor(sessions, "Sam", linked=True)
    patient = await add_patient(sessions, counselor=primary)
    await assign(sessions, patient, backup, AssignmentRole.BACKUP)
    async with db.transaction(sessions) as session:
        assert [c.name for c in await assigned_counselors(session, patient.id)] == ["Dana"]
        (await session.get_one(Counselor, primary.id)).chat_id = None  # not linked to Telegram
    async with sessions() as session:
        assert [c.name for c in await assigned_counselors(session, patient.id)] == ["Sam"]


async def test_a_run_of_cant_make_it_is_counted_back_from_the_last_answer(sessions: Sessions) -> None:
    g = await _evening_group(sessions)

    async def answer(start: str, response: Rsvp, now: datetime) -> int:
        async with db.transaction(sessions) as session:
            found = await schedule.find_occurrence(session, g.ny.id, g.session_id, ny(start))
            assert found is not None
            await schedule.answer(session, g.ny, found, response, now)
            return await schedule.declined_in_a_row(session, g.ny.id, now)

    monday = ny("2027-03-08 12:00")
    assert await answer("2027-03-08 18:00", Rsvp.CANNOT, monday) == 1
    # Wednesday's, answered ahead on Monday: the run counts back from it, through Monday's
    assert await answer("2027-03-10 18:00", Rsvp.CANNOT, monday) == 2
    # answered the other way round, the same run
    assert await answer("2027-03-10 18:00", Rsvp.COMING, monday) == 0
    assert await answer("2027-03-10 18:00", Rsvp.CANNOT, monday) == 2
    # Thursday's session passed without an answer: Friday's "can't make it" to next Monday starts a new run
    friday = ny("2027-03-12 09:00")
    assert await answer("2027-03-15 18:00", Rsvp.CANNOT, friday) == 1
    # ...and the other patient in the group has no run at all
    async with sessions() as session:
        assert await schedule.declined_in_a_row(session, g.la.id, friday) == 0
