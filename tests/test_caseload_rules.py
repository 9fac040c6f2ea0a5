"""The counselor's caseload, patient summary and digest (bot/workspace/caseload.py) on the test database.

"Now" is Thursday 2026-11-26 18:00 UTC (12:00 in Chicago); the local week began on Monday 2026-11-23.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.checkin import rules as checkin
from bot.checkin.history import Day
from bot.checkin.rules import Question
from bot.core import db
from bot.core.models import (
    AssignmentRole,
    Attendance,
    CheckIn,
    CheckInSource,
    CheckInStatus,
    CopingSession,
    CopingStatus,
    Counselor,
    Escalation,
    EscalationStatus,
    Patient,
    PatientStatus,
    Rsvp,
    SessionKind,
)
from bot.risk.levels import RiskLevel
from bot.schedule import rules as schedule
from bot.workspace import caseload as rules
from bot.workspace import rules as workspace
from bot.workspace.caseload import CaseloadLine, EscalationItem, Sessions, Trend
from tests.harness import SHIPPED_CONTENT, load_content_once
from tests.records import add_counselor, add_patient

Sessions_ = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
TODAY = date(2026, 11, 26)
CHICAGO = "America/Chicago"


# ---- records ---------------------------------------------------------------------------------------------


async def _patient(
    sessions: Sessions_,
    counselor_id: int,
    alias: str,
    *,
    role: AssignmentRole = AssignmentRole.PRIMARY,
    **fields: object,
) -> Patient:
    """On the counselor's caseload, in Chicago, enrolled a month before NOW unless `fields` say otherwise."""
    fields = {"timezone": CHICAGO, "created_at": NOW - timedelta(days=30), **fields}
    return await add_patient(sessions, counselor=counselor_id, team_role=role, alias=alias, **fields)


async def _checkin(
    sessions: Sessions_,
    patient: Patient,
    day: date,
    *,
    craving: int | None = None,
    mood: int | None = None,
    used: bool | None = None,
    triggers: list[str] | None = None,
    answered_at: datetime | None = None,
    answered: bool = True,
) -> None:
    started = datetime.combine(day, time(20, 0), tzinfo=UTC)
    async with db.transaction(sessions) as session:
        session.add(
            CheckIn(
                patient_id=patient.id,
                source=CheckInSource.ON_DEMAND,
                status=CheckInStatus.COMPLETE if answered else CheckInStatus.MISSED,
                local_day=day,
                started_at=started,
                expires_at=started + timedelta(hours=6),
                answered_at=(answered_at or started) if answered else None,
                craving=craving,
                mood=mood,
                used=used,
                triggers=triggers,
            )
        )


async def _escalation(
    sessions: Sessions_,
    patient: Patient,
    level: RiskLevel,
    *,
    status: EscalationStatus = EscalationStatus.OPEN,
    created_at: datetime = NOW - timedelta(hours=2),
    category: str = "suicide",
) -> int:
    async with db.transaction(sessions) as session:
        escalation = Escalation(
            patient_id=patient.id,
            level=level.label,
            category=category,
            source="checkin_note",
            detail="the patient's own words",
            status=status,
            created_at=created_at,
            last_signal_at=created_at,
        )
        session.add(escalation)
        await session.flush()
        return escalation.id


def _day(offset: int) -> date:
    """A local day `offset` days before TODAY."""
    return TODAY - timedelta(days=offset)


_CALM = CaseloadLine(
    patient_id=1,
    alias="",
    days_since_checkin=0,
    craving_mean=2.0,
    craving_trend=Trend.FLAT,
    use_days=0,
    week=Sessions(),
    open_escalations=0,
    highest_open_level=None,
)


def _line(alias: str, **fields: Any) -> CaseloadLine:
    return dataclasses.replace(_CALM, alias=alias, **fields)


# ---- pure rules --------------------------------------------------------------------------------------------


def _week(*cravings: int | None) -> list[Day]:
    return [Day(_day(6 - i), c, None, False, checked_in=c is not None) for i, c in enumerate(cravings)]


@pytest.mark.parametrize(
    ("cravings", "trend"),
    [
        ((2, 2, 2, 2, 5, 6, 5), Trend.UP),
        ((6, 6, 6, 6, 2, 3, 2), Trend.DOWN),
        ((4, 4, 4, 4, 5, 5, 5), Trend.FLAT),  # +1.0 is inside the dead band
        ((4, 4, 4, 4, 3, 3, 3), Trend.FLAT),
        ((None, None, 3, None, 9, None, None), Trend.UP),  # means of the days with a value
        ((2, 2, 2, 2, None, None, None), None),  # nothing in the last 3 days
        ((None, None, None, None, 5, 5, 5), None),  # nothing before them
    ],
)
def test_craving_trend(cravings: tuple[int | None, ...], trend: Trend | None) -> None:
    assert rules.craving_trend(_week(*cravings)) is trend


def test_attention_key_orders_each_rule_before_the_next() -> None:
    lines = [
        _line("a-quiet", days_since_checkin=1),
        _line("b-silent", days_since_checkin=4),
        _line("c-never", days_since_checkin=None),
        _line("d-high-mean", craving_mean=7.5, days_since_checkin=9),
        _line("e-rising", craving_trend=Trend.UP),
        _line("f-used", use_days=1, craving_mean=9.0),
        _line("g-high", highest_open_level=RiskLevel.HIGH, open_escalations=1),
        _line("h-imminent", highest_open_level=RiskLevel.IMMINENT, open_escalations=1),
        _line("i-moderate", highest_open_level=RiskLevel.MODERATE, open_escalations=1, days_since_checkin=2),
    ]
    ordered = sorted(lines, key=rules.attention_key)
    assert [line.alias for line in ordered] == [
        "h-imminent",
        "g-high",
        "f-used",
        "d-high-mean",  # more days without a check-in than e-rising
        "e-rising",
        "c-never",
        "b-silent",
        "i-moderate",
        "a-quiet",
    ]
    # The "high mean" threshold is the caller's setting.
    assert rules.attention_key(lines[3], high_craving=8) > rules.attention_key(lines[4], high_craving=8)


def test_pagination_edges() -> None:
    assert rules.page([], 1) == rules.Page((), 1, 1)
    assert rules.page([], 5) == rules.Page((), 1, 1)
    items = list(range(25))
    assert rules.page(items, 1) == rules.Page(tuple(range(10)), 1, 3)
    assert rules.page(items, 3) == rules.Page((20, 21, 22, 23, 24), 3, 3)
    assert rules.page(items, 0) == rules.page(items, 1)
    assert rules.page(items, -4) == rules.page(items, 1)
    assert rules.page(items, 99) == rules.page(items, 3)
    assert rules.page(list(range(20)), 2).pages == 2
    assert rules.page(list(range(21)), 3, size=7) == rules.Page((14, 15, 16, 17, 18, 19, 20), 3, 3)
    with pytest.raises(ValueError, match="page size"):
        rules.page(items, 1, size=0)


# ---- the caseload ------------------------------------------------------------------------------------------


async def test_caseload_lists_who_needs_attention_first(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    quiet = await _patient(sessions, me, "Avery")
    await _checkin(sessions, quiet, _day(0), craving=1)
    silent = await _patient(sessions, me, "Blake")
    await _checkin(sessions, silent, _day(5), craving=2)
    never = await _patient(sessions, me, "Casey")
    await _checkin(sessions, never, _day(1), answered=False)  # a missed check-in is not a check-in
    rising = await _patient(sessions, me, "Drew")
    for offset, craving in [(6, 1), (5, 1), (4, 2), (3, 1), (2, 5), (1, 6), (0, 6)]:
        await _checkin(sessions, rising, _day(offset), craving=craving)
    used = await _patient(sessions, me, "Emery")
    await _checkin(sessions, used, _day(2), craving=3, used=True)
    await _checkin(sessions, used, _day(0), craving=2, used=False)
    high = await _patient(sessions, me, "Finley")
    await _checkin(sessions, high, _day(0), craving=0)
    await _escalation(sessions, high, RiskLevel.HIGH)
    imminent = await _patient(sessions, me, "Gray")
    await _checkin(sessions, imminent, _day(0), craving=0)
    await _escalation(sessions, imminent, RiskLevel.HIGH, category="overdose")
    await _escalation(sessions, imminent, RiskLevel.IMMINENT, status=EscalationStatus.ACKNOWLEDGED)
    settled = await _patient(sessions, me, "Harper")  # its imminent escalation is resolved
    await _checkin(sessions, settled, _day(0), craving=0)
    await _escalation(sessions, settled, RiskLevel.IMMINENT, status=EscalationStatus.RESOLVED)

    async with db.transaction(sessions) as session:
        lines = await rules.caseload(session, me, NOW)

    assert [line.alias for line in lines] == [
        "Gray",
        "Finley",
        "Emery",
        "Drew",
        "Casey",
        "Blake",
        "Avery",
        "Harper",
    ]
    by_alias = {line.alias: line for line in lines}
    assert by_alias["Gray"].open_escalations == 2
    assert by_alias["Gray"].highest_open_level is RiskLevel.IMMINENT
    assert by_alias["Finley"].highest_open_level is RiskLevel.HIGH
    assert by_alias["Harper"].open_escalations == 0 and by_alias["Harper"].highest_open_level is None
    assert by_alias["Drew"].craving_trend is Trend.UP
    assert by_alias["Drew"].craving_mean == round((1 + 1 + 2 + 1 + 5 + 6 + 6) / 7, 1)
    assert by_alias["Blake"].days_since_checkin == 5
    assert by_alias["Avery"].days_since_checkin == 0
    assert by_alias["Emery"].use_days == 1


async def test_use_days_count_local_days_in_the_last_week(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    patient = await _patient(sessions, me, "Jules")
    await _checkin(sessions, patient, _day(7), used=True)  # eight days ago: outside
    await _checkin(sessions, patient, _day(6), used=True)
    await _checkin(sessions, patient, _day(3), used=True)
    await _checkin(sessions, patient, _day(3), used=False)  # the same day again: still one day
    await _checkin(sessions, patient, _day(1), used=False)
    await _checkin(sessions, patient, _day(0), used=None)

    async with db.transaction(sessions) as session:
        (line,) = await rules.caseload(session, me, NOW)
    assert line.use_days == 2
    assert line.craving_mean is None and line.craving_trend is None


async def test_craving_trend_down_and_flat_on_the_caseload(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    falling = await _patient(sessions, me, "Kai")
    steady = await _patient(sessions, me, "Lee")
    for offset in range(7):
        await _checkin(sessions, falling, _day(offset), craving=2 if offset < 3 else 8)
        await _checkin(sessions, steady, _day(offset), craving=4 if offset % 2 else 5)
    async with db.transaction(sessions) as session:
        lines = {line.alias: line for line in await rules.caseload(session, me, NOW)}
    assert lines["Kai"].craving_trend is Trend.DOWN
    assert lines["Lee"].craving_trend is Trend.FLAT


async def test_never_checked_in(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    await _patient(sessions, me, "Morgan")
    async with db.transaction(sessions) as session:
        (line,) = await rules.caseload(session, me, NOW)
    assert line == CaseloadLine(
        patient_id=line.patient_id,
        alias="Morgan",
        days_since_checkin=None,
        craving_mean=None,
        craving_trend=None,
        use_days=0,
        week=Sessions(),
        open_escalations=0,
        highest_open_level=None,
    )


async def test_only_the_counselors_active_patients_are_listed(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, "Dana", timezone=CHICAGO)).id
    other = (await add_counselor(sessions, "Eli", timezone=CHICAGO)).id
    await _patient(sessions, me, "Mine")
    await _patient(sessions, me, "Backed", role=AssignmentRole.BACKUP)
    theirs = await _patient(sessions, other, "Theirs")
    await _escalation(sessions, theirs, RiskLevel.IMMINENT)
    await _patient(sessions, me, "Gone", status=PatientStatus.DISCHARGED)
    await _patient(sessions, me, "Revoked", status=PatientStatus.CONSENT_REVOKED)
    await _patient(sessions, me, "Starting", status=PatientStatus.ONBOARDING)

    async with db.transaction(sessions) as session:
        mine = [line.alias for line in await rules.caseload(session, me, NOW)]
        theirs_listed = [line.alias for line in await rules.caseload(session, other, NOW)]
        assert await rules.is_on_caseload(session, me, theirs.id) is False
        assert await rules.is_on_caseload(session, other, theirs.id) is True
        assert await rules.caseload(session, 999_999, NOW) == []
    assert sorted(mine) == ["Backed", "Mine"]
    assert theirs_listed == ["Theirs"]


async def test_attendance_this_week_counts_sessions_so_far_and_rsvps(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    patient = await _patient(sessions, me, "Noa")
    await _patient(sessions, me, "Oli")
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, "Evening IOP", create=True)
        await schedule.join_group(session, group, patient)
        # Mon/Wed/Thu 18:00 Chicago (00:00 UTC the next day): Mon and Wed have started by Thu 12:00 Chicago.
        evening = await schedule.add_session(
            session,
            title="Evening IOP",
            kind=SessionKind.GROUP,
            starts_local=datetime(2026, 11, 2, 18, 0),
            timezone=CHICAGO,
            duration=timedelta(hours=3),
            rrule="FREQ=WEEKLY;BYDAY=MO,WE,TH",
            group=group,
        )
        # Daily 09:00 Chicago for Noa only: Mon to Thu have started.
        own = await schedule.add_session(
            session,
            title="Check-in call",
            kind=SessionKind.INDIVIDUAL,
            starts_local=datetime(2026, 11, 20, 9, 0),
            timezone=CHICAGO,
            duration=timedelta(minutes=30),
            rrule="FREQ=DAILY",
            patient=patient,
        )
        session.add_all(
            [
                Attendance(
                    patient_id=patient.id,
                    session_id=evening.id,
                    occurrence=datetime(2026, 11, 24, 0, 0, tzinfo=UTC),
                    response=Rsvp.COMING,
                ),
                Attendance(
                    patient_id=patient.id,
                    session_id=evening.id,
                    occurrence=datetime(2026, 11, 26, 0, 0, tzinfo=UTC),
                    response=Rsvp.CANNOT,
                ),
                Attendance(
                    patient_id=patient.id,
                    session_id=own.id,
                    occurrence=datetime(2026, 11, 25, 15, 0, tzinfo=UTC),
                    response=Rsvp.LATE,
                ),
                # Last week's answer does not count this week.
                Attendance(
                    patient_id=patient.id,
                    session_id=own.id,
                    occurrence=datetime(2026, 11, 22, 15, 0, tzinfo=UTC),
                    response=Rsvp.CANNOT,
                ),
            ]
        )

    async with db.transaction(sessions) as session:
        lines = {line.alias: line for line in await rules.caseload(session, me, NOW)}
    assert lines["Noa"].week == Sessions(expected=6, coming=2, declined=1)
    assert lines["Noa"].week.unanswered == 3
    assert lines["Oli"].week == Sessions()


async def test_caseload_of_fifty_patients_uses_a_handful_of_queries(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    for number in range(50):
        patient = await _patient(sessions, me, f"Q{number:02}")
        await _checkin(sessions, patient, _day(number % 9), craving=number % 11, used=number % 5 == 0)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    async with db.transaction(sessions) as session:
        sync_engine = session.get_bind()
        event.listen(sync_engine, "before_cursor_execute", count)
        try:
            lines = await rules.caseload(session, me, NOW)
        finally:
            event.remove(sync_engine, "before_cursor_execute", count)
    assert len(lines) == 50
    assert len(statements) <= 8


# ---- one patient's summary ---------------------------------------------------------------------------------


async def test_summary_days_are_the_patients_own_local_days(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    patient = await _patient(sessions, me, "Parker")
    # 02:00 UTC on the 25th is 20:00 on the 24th in Chicago: that check-in belongs to the 24th.
    late_evening = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    async with db.transaction(sessions) as session:
        row, _ = await checkin.begin_on_demand(session, patient, late_evening, expiry=timedelta(hours=6))
        checkin.answer(row, Question.CRAVING, 6, late_evening)
        checkin.confirm_triggers(row, late_evening)
        checkin.answer(row, Question.MOOD, 2, late_evening)
        checkin.answer(row, Question.SLEEP, "ok", late_evening)
        checkin.answer(row, Question.USE, False, late_evening)
    await _checkin(sessions, patient, _day(0), craving=3)  # use question skipped
    await _checkin(sessions, patient, _day(4), craving=8, used=True)

    # 03:00 UTC on the 27th is still the 26th in Chicago.
    async with db.transaction(sessions) as session:
        summary = await rules.patient_summary(
            session, patient.id, datetime(2026, 11, 27, 3, 0, tzinfo=UTC), 7
        )

    assert [d.day for d in summary.days] == [_day(offset) for offset in range(6, -1, -1)]
    by_day = {d.day: d for d in summary.days}
    assert by_day[date(2026, 11, 24)] == rules.SummaryDay(date(2026, 11, 24), 6, 2, False)
    assert by_day[date(2026, 11, 25)] == rules.SummaryDay(date(2026, 11, 25), None, None, None)
    assert by_day[TODAY] == rules.SummaryDay(TODAY, 3, None, None)
    assert by_day[_day(4)].used is True
    assert summary.totals.checkins == 3 and summary.totals.use_days == 1
    assert summary.alias == "Parker" and summary.timezone == CHICAGO


async def test_summary_top_triggers_and_what_helped(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    patient = await _patient(sessions, me, "Quinn")
    named = [
        ["stress", "lonely", "tired"],
        ["stress", "lonely"],
        ["stress", "money", "people"],
        ["boredom", "places"],
        ["tired"],
    ]
    for offset, triggers in enumerate(named):
        await _checkin(sessions, patient, _day(offset), triggers=triggers)
    await _checkin(sessions, patient, _day(20), triggers=["anger"])  # outside the window
    runs = [
        ("urge_surfing", 8, 4, NOW - timedelta(days=1)),
        ("urge_surfing", 6, 5, NOW - timedelta(days=2)),
        ("box_breathing", 5, 7, NOW - timedelta(days=1)),  # went up
        ("grounding", 7, 7, NOW - timedelta(days=1)),  # no change
        ("body_scan", 9, 1, NOW - timedelta(days=30)),  # before the window
    ]
    async with db.transaction(sessions) as session:
        for module_id, before, after, finished in runs:
            session.add(
                CopingSession(
                    patient_id=patient.id,
                    module_id=module_id,
                    status=CopingStatus.DONE,
                    steps_total=3,
                    craving_before=before,
                    craving_after=after,
                    started_at=finished - timedelta(minutes=5),
                    finished_at=finished,
                )
            )
        session.add(
            CopingSession(
                patient_id=patient.id,
                module_id="muscle_relaxation",
                status=CopingStatus.ABANDONED,
                steps_total=3,
                craving_before=9,
                finished_at=NOW - timedelta(days=1),
            )
        )

    async with db.transaction(sessions) as session:
        summary = await rules.patient_summary(session, patient.id, NOW)

    assert summary.top_triggers == (
        ("stress", 3),
        ("lonely", 2),
        ("tired", 2),
        ("boredom", 1),
        ("money", 1),
    )
    assert [(s.module_id, s.runs, s.average_drop) for s in summary.helped] == [("urge_surfing", 2, 2.5)]


async def test_summary_escalations_are_tuples_without_the_patients_words(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    patient = await _patient(sessions, me, "Reese")
    old_open = await _escalation(
        sessions,
        patient,
        RiskLevel.HIGH,
        status=EscalationStatus.ACKNOWLEDGED,
        created_at=NOW - timedelta(days=40),
    )
    await _escalation(
        sessions,
        patient,
        RiskLevel.HIGH,
        status=EscalationStatus.RESOLVED,
        created_at=NOW - timedelta(days=30),
    )
    recent_resolved = await _escalation(
        sessions,
        patient,
        RiskLevel.IMMINENT,
        status=EscalationStatus.RESOLVED,
        created_at=NOW - timedelta(days=3),
        category="overdose",
    )
    async with db.transaction(sessions) as session:
        summary = await rules.patient_summary(session, patient.id, NOW)

    assert summary.escalations == (
        (recent_resolved, RiskLevel.IMMINENT, "overdose", EscalationStatus.RESOLVED, NOW - timedelta(days=3)),
        (old_open, RiskLevel.HIGH, "suicide", EscalationStatus.ACKNOWLEDGED, NOW - timedelta(days=40)),
    )
    assert all(isinstance(item, EscalationItem) and len(item) == 5 for item in summary.escalations)
    assert "own words" not in repr(summary)


async def test_summary_missed_sessions_in_the_window(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    patient = await _patient(sessions, me, "Sage")
    async with db.transaction(sessions) as session:
        weekly = await schedule.add_session(
            session,
            title="Individual",
            kind=SessionKind.INDIVIDUAL,
            starts_local=datetime(2026, 10, 1, 9, 0),
            timezone=CHICAGO,
            duration=timedelta(hours=1),
            rrule="FREQ=WEEKLY;BYDAY=TU",
            patient=patient,
        )
        for day, response in [(17, Rsvp.CANNOT), (24, Rsvp.CANNOT), (3, Rsvp.CANNOT)]:
            session.add(
                Attendance(
                    patient_id=patient.id,
                    session_id=weekly.id,
                    occurrence=datetime(2026, 11, day, 15, 0, tzinfo=UTC),
                    response=response,
                )
            )
    async with db.transaction(sessions) as session:
        summary = await rules.patient_summary(session, patient.id, NOW)
    # The 14 local days are Nov 13-26: Tuesdays 17 and 24 (the 3rd is before the window).
    assert summary.sessions == Sessions(expected=2, coming=0, declined=2)
    assert summary.missed_sessions == 2


async def test_summary_of_an_unknown_patient(sessions: Sessions_) -> None:
    async with db.transaction(sessions) as session:
        with pytest.raises(LookupError):
            await rules.patient_summary(session, 424_242, NOW)


# ---- the digest --------------------------------------------------------------------------------------------


async def test_a_digest_late_in_the_evening_is_still_due_after_midnight(sessions: Sessions_) -> None:
    counselor = await add_counselor(sessions, timezone=CHICAGO, linked=True, digest_time=time(23, 0))
    at = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # 23:00 in Chicago on 11-26
    async with db.transaction(sessions) as session:
        assert await workspace.due_digests(session, at - timedelta(minutes=1)) == []
        for late in (timedelta(0), timedelta(hours=1, minutes=30)):  # 23:00, and 00:30 the next day
            due = await workspace.due_digests(session, at + late)
            assert [(c.id, day) for c, day in due] == [(counselor.id, TODAY)], late
        assert await workspace.due_digests(session, at + workspace.DIGEST_WINDOW) == []


async def test_no_digest_when_there_is_nothing_to_say(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    async with db.transaction(sessions) as session:
        assert await rules.digest(session, me, NOW, high_craving=7) is None
    patient = await _patient(sessions, me, "Tatum")
    # Checked in yesterday (more than 24 hours ago): neither news nor silence.
    await _checkin(sessions, patient, _day(1), craving=9, used=True, answered_at=NOW - timedelta(hours=30))
    await _patient(sessions, me, "Newcomer", created_at=NOW - timedelta(days=1))  # too new to be "silent"
    await _escalation(sessions, patient, RiskLevel.HIGH, status=EscalationStatus.RESOLVED)
    async with db.transaction(sessions) as session:
        assert await rules.digest(session, me, NOW, high_craving=7) is None


async def test_a_digest_with_each_kind_of_entry(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    other = (await add_counselor(sessions, "Eli", timezone=CHICAGO)).id
    fine = await _patient(sessions, me, "Uma")
    await _checkin(sessions, fine, _day(0), craving=2, answered_at=NOW - timedelta(hours=3))
    craving = await _patient(sessions, me, "Val")
    await _checkin(sessions, craving, _day(1), craving=7, answered_at=NOW - timedelta(hours=20))
    await _checkin(sessions, craving, _day(0), craving=9, answered_at=NOW - timedelta(hours=1))
    used = await _patient(sessions, me, "Wren")
    await _checkin(sessions, used, _day(0), craving=4, used=True, answered_at=NOW - timedelta(hours=2))
    silent = await _patient(sessions, me, "Xan")
    await _checkin(sessions, silent, _day(4), craving=1)
    never = await _patient(sessions, me, "Yael")  # never checked in, enrolled 30 days ago
    alarmed = await _patient(sessions, me, "Zed")
    await _checkin(sessions, alarmed, _day(0), craving=1, answered_at=NOW - timedelta(hours=5))
    high = await _escalation(sessions, alarmed, RiskLevel.HIGH)
    imminent = await _escalation(sessions, alarmed, RiskLevel.IMMINENT, category="overdose")
    theirs = await _patient(sessions, other, "Theirs")
    await _checkin(sessions, theirs, _day(0), craving=10, used=True, answered_at=NOW - timedelta(hours=1))
    gone = await _patient(sessions, me, "Gone", status=PatientStatus.DISCHARGED)
    await _checkin(sessions, gone, _day(0), craving=10, used=True, answered_at=NOW - timedelta(hours=1))
    async with db.transaction(sessions) as session:
        group = await schedule.group_named(session, "Evening IOP", create=True)
        evening = await schedule.add_session(
            session,
            title="Evening IOP",
            kind=SessionKind.GROUP,
            starts_local=datetime(2026, 11, 2, 18, 0),
            timezone=CHICAGO,
            duration=timedelta(hours=3),
            rrule="FREQ=WEEKLY;BYDAY=MO,WE,TH",
            group=group,
        )
        thursday_evening = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
        session.add_all(
            [
                Attendance(
                    patient_id=fine.id,
                    session_id=evening.id,
                    occurrence=thursday_evening,
                    response=Rsvp.CANNOT,
                    reason="my words",
                    responded_at=NOW - timedelta(hours=4),
                ),
                Attendance(
                    patient_id=used.id,
                    session_id=evening.id,
                    occurrence=thursday_evening,
                    response=Rsvp.COMING,
                    responded_at=NOW - timedelta(hours=4),
                ),
                Attendance(
                    patient_id=craving.id,
                    session_id=evening.id,
                    occurrence=datetime(2026, 11, 24, 0, 0, tzinfo=UTC),
                    response=Rsvp.CANNOT,
                    responded_at=NOW - timedelta(days=3),
                ),
            ]
        )

    async with db.transaction(sessions) as session:
        found = await rules.digest(session, me, NOW, high_craving=7)

    assert found is not None
    ref = rules.PatientRef
    assert found.checked_in == (
        ref(fine.id, "Uma"),
        ref(craving.id, "Val"),
        ref(used.id, "Wren"),
        ref(alarmed.id, "Zed"),
    )
    assert found.silent == (rules.Silent(ref(never.id, "Yael"), None), rules.Silent(ref(silent.id, "Xan"), 4))
    assert found.high_cravings == (rules.HighCraving(ref(craving.id, "Val"), 9),)
    assert found.used == (ref(used.id, "Wren"),)
    assert found.declined == (
        rules.Declined(ref(fine.id, "Uma"), evening.id, "Evening IOP", thursday_evening),
    )
    assert [(e.patient.alias, e.escalation.id, e.escalation.level) for e in found.escalations] == [
        ("Zed", imminent, RiskLevel.IMMINENT),
        ("Zed", high, RiskLevel.HIGH),
    ]
    assert "words" not in repr(found)


# ---- naming a patient in /note and /patient ---------------------------------------------------------------


async def test_a_note_names_the_longest_alias_or_a_quoted_one(sessions: Sessions_) -> None:
    me = (await add_counselor(sessions, timezone=CHICAGO)).id
    other = (await add_counselor(sessions, "Sam", timezone=CHICAGO)).id
    sam = await _patient(sessions, me, "Sam")  # made before ambiguous aliases were refused
    sam_lee = await _patient(sessions, me, "Sam Lee")
    await _patient(sessions, other, "Sam Lee Jr")

    async def named(*words: str) -> tuple[int | None, str, str]:
        async with db.transaction(sessions) as session:
            counselor = await session.get_one(Counselor, me)
            found = await workspace.patient_and_rest(session, counselor, words)
            return (found.patient.id if found.patient else None, found.alias, found.rest)

    assert await named("sam", "lee", "relapsed", "on", "Friday") == (
        sam_lee.id,
        "sam lee",
        "relapsed on Friday",
    )
    assert await named("Sam", "called") == (sam.id, "Sam", "called")
    assert await named('"Sam"', "Lee", "called") == (sam.id, "Sam", "Lee called")
    assert await named("“Sam", "Lee”", "called") == (sam_lee.id, "Sam Lee", "called")
    # The longest alias is another counselor's patient: refused, never filed on the shorter alias.
    assert await named("Sam", "Lee", "Jr", "called") == (None, "Sam Lee Jr", "called")
    assert await named("Nobody", "here") == (None, "Nobody", "here")


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_caseload_line_and_the_digest_time_read_cleanly(language: str) -> None:
    catalog = load_content_once(SHIPPED_CONTENT).catalog

    def line(**figures: object) -> str:
        values: dict[str, object] = {
            "alert": False,
            "alias": "River",
            "checkin_days": 0,
            "craving": 9.0,
            "arrow": "",
            "use_days": 0,
            "coming": 0,
            "expected": 0,
            "declined": 0,
            "open": 0,
            "level": "",
            "measures": "",
        }
        return catalog.render("caseload.line", language, **(values | figures))

    # No trend yet: no space left where the arrow would be.
    assert "9.0;" in line() and " ;" not in line()
    up = catalog.render("caseload.arrows.up", language)
    assert f"9.0 {up};" in line(arrow=up)
    # Sessions say what the figures are, not "0/0" or "1/3".
    assert "0/0" not in line() and line() != line(expected=3, coming=1, declined=1)
    assert "1/3" not in line(expected=3, coming=1, declined=1)
    # Flagged questionnaire scores close the line; none, nothing.
    assert "⚑" not in line() and line(measures="PHQ-9 21") == f"{line()}; ⚑ PHQ-9 21"
    # /digest with no time set says that the digest is off, as /digest off does.
    off = catalog.render("caseload.digest_off", language).split(".")[0]
    assert catalog.render("caseload.digest_usage", language, time=None).startswith(off)
    assert "08:30" in catalog.render("caseload.digest_usage", language, time="08:30")
