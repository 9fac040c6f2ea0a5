"""What a patient's typed text may be answering (bot/waiting.py): the five things found in one query, each
as its own module defines it, and only the patient's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.checkin import rules as checkin
from bot.checkin.rules import Question as CheckInQuestion
from bot.content.modules import Module
from bot.coping import rules as coping
from bot.core import db
from bot.core.models import (
    Attendance,
    CheckIn,
    CheckInSource,
    CheckInStatus,
    CopingSession,
    CopingStatus,
    Patient,
    Rsvp,
    SafetyPlan,
    ScreenStatus,
    SessionKind,
    SuicideScreen,
)
from bot.risk import cssrs
from bot.risk import safety_plan as plans
from bot.risk.cssrs import Question as ScreenQuestion
from bot.risk.cssrs import Trigger
from bot.schedule import rules as schedule
from bot.waiting import Waiting, patient_and_waiting, waiting_for
from tests.records import add_patient

Sessions = async_sessionmaker[AsyncSession]

NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
WITHIN = timedelta(minutes=10)
EXPIRY = timedelta(hours=6)


@dataclass(frozen=True)
class Ids:
    """Which row each field of a `Waiting` is (by id), None where nothing waits."""

    plan: int | None = None
    screen: int | None = None
    exercise: int | None = None
    checkin: int | None = None
    reason: int | None = None


def _ids(waiting: Waiting) -> Ids:
    return Ids(
        plan=waiting.plan.id if waiting.plan else None,
        screen=waiting.screen.id if waiting.screen else None,
        exercise=waiting.exercise.id if waiting.exercise else None,
        checkin=waiting.checkin.id if waiting.checkin else None,
        reason=waiting.reason.id if waiting.reason else None,
    )


async def _waiting(sessions: Sessions, patient_id: int, within: timedelta = WITHIN) -> Waiting:
    async with sessions() as session:
        waiting = await waiting_for(session, patient_id, NOW, reason_within=within)
    # Each field is the model its module's query selects, not a row of another table with the same id.
    assert waiting.plan is None or isinstance(waiting.plan, SafetyPlan)
    assert waiting.screen is None or isinstance(waiting.screen, SuicideScreen)
    assert waiting.exercise is None or isinstance(waiting.exercise, CopingSession)
    assert waiting.checkin is None or isinstance(waiting.checkin, CheckIn)
    assert waiting.reason is None or isinstance(waiting.reason, Attendance)
    return waiting


async def _one_by_one(sessions: Sessions, patient_id: int, within: timedelta = WITHIN) -> Ids:
    """The same five found the way each module finds its own, one query each."""
    async with sessions() as session:
        plan = await session.scalar(plans.being_edited_query(patient_id))
        screen = await cssrs.open_screen(session, patient_id)
        exercise = await coping.active_session(session, patient_id)
        open_checkin = await checkin.open_checkin(session, patient_id)
        reason = await schedule.awaiting_reason(session, patient_id, NOW, within=within)
    return Ids(
        plan=plan.id if plan else None,
        screen=screen.id if screen else None,
        exercise=exercise.id if exercise else None,
        checkin=open_checkin.id if open_checkin else None,
        reason=reason.id if reason else None,
    )


# ---- rows, through the real rules ----------------------------------------------------------------------


async def _plan_being_edited(sessions: Sessions, patient_id: int) -> int:
    async with db.transaction(sessions) as session:
        plan = await plans.plan_for_editing(session, patient_id)
        plans.begin(plan)
        await session.flush()
        return plan.id


async def _plan_left(sessions: Sessions, patient_id: int) -> int:
    """A plan whose walk-through was stopped: `editing` is None."""
    async with db.transaction(sessions) as session:
        plan = await plans.plan_for_editing(session, patient_id)
        plans.begin(plan)
        plans.stop(plan)
        await session.flush()
        assert plan.editing is None
        return plan.id


async def _open_screen(sessions: Sessions, patient_id: int, now: datetime = NOW) -> int:
    async with db.transaction(sessions) as session:
        return (await cssrs.start(session, patient_id, Trigger.AMBIGUOUS, None, now)).id


async def _complete_screen(sessions: Sessions, patient_id: int) -> int:
    async with db.transaction(sessions) as session:
        screen = await cssrs.start(session, patient_id, Trigger.AMBIGUOUS, None, NOW)
        cssrs.agree(screen, cssrs.Period.PAST_MONTH, NOW)
        for question in (ScreenQuestion.WISH_DEAD, ScreenQuestion.THOUGHTS, ScreenQuestion.BEHAVIOR):
            cssrs.answer(screen, question, False, NOW)
        assert screen.status is ScreenStatus.COMPLETE
        await session.flush()
        return screen.id


async def _exercise(sessions: Sessions, patient_id: int, box: Module) -> int:
    async with db.transaction(sessions) as session:
        return (await coping.begin(session, patient_id, box, NOW)).id


async def _finished_exercise(sessions: Sessions, patient_id: int, box: Module) -> int:
    async with db.transaction(sessions) as session:
        run = await coping.begin(session, patient_id, box, NOW)
        coping.rate_before(run, 7)
        await coping.stop(session, run, NOW)
        coping.rate_after(run, 4, NOW)
        assert run.status is CopingStatus.DONE
        await session.flush()
        return run.id


async def _open_checkin(sessions: Sessions, patient: Patient, now: datetime = NOW) -> int:
    async with db.transaction(sessions) as session:
        found, new = await checkin.begin_on_demand(session, patient, now, expiry=EXPIRY)
        assert new
        return found.id


async def _checkin_started(sessions: Sessions, patient_id: int, started_at: datetime) -> int:
    """An open check-in written directly (begin_on_demand resumes an open one rather than open a second)."""
    async with db.transaction(sessions) as session:
        row = CheckIn(
            patient_id=patient_id,
            source=CheckInSource.ON_DEMAND,
            local_day=started_at.date(),
            step=CheckInQuestion.CRAVING,
            started_at=started_at,
            expires_at=started_at + EXPIRY,
        )
        session.add(row)
        await session.flush()
        return row.id


async def _closed_checkin(sessions: Sessions, patient: Patient) -> int:
    """A check-in left unanswered past its time and closed as missed."""
    started = NOW - 2 * EXPIRY
    checkin_id = await _open_checkin(sessions, patient, started)
    async with db.transaction(sessions) as session:
        closed = await checkin.close_expired(session, NOW)
    assert [(c.id, c.status) for c in closed] == [(checkin_id, CheckInStatus.MISSED)]
    return checkin_id


_starts = iter(range(1, 28))


async def _answered(sessions: Sessions, patient: Patient, response: Rsvp, at: datetime) -> int:
    """The patient's answer to a reminder of a one-off individual session of their own, given at `at`."""
    starts_local = datetime(2026, 4, next(_starts), 10, 0)
    async with db.transaction(sessions) as session:
        program = await schedule.add_session(
            session,
            title="Individual session",
            kind=SessionKind.INDIVIDUAL,
            starts_local=starts_local,
            timezone="UTC",
            duration=timedelta(hours=1),
            patient=patient,
        )
        found = await schedule.find_occurrence(
            session, patient.id, program.id, starts_local.replace(tzinfo=UTC)
        )
        assert found is not None
        row = await schedule.answer(session, patient, found, response, at)
        await session.flush()
        return row.id


# ---- the tests ---------------------------------------------------------------------------------------------


async def test_nothing_waiting_is_all_none(sessions: Sessions) -> None:
    """A patient with nothing under way: all five are None."""
    patient = await add_patient(sessions)
    assert await _waiting(sessions, patient.id) == Waiting(None, None, None, None, None)


async def test_each_kind_alone_and_all_at_once(sessions: Sessions, box: Module) -> None:
    """Each kind is found as the right row with the others None; all five together come back in one call."""
    only_plan, only_screen, only_exercise, only_checkin, only_reason, everything = [
        await add_patient(sessions) for _ in range(6)
    ]
    expected = {
        only_plan.id: Ids(plan=await _plan_being_edited(sessions, only_plan.id)),
        only_screen.id: Ids(screen=await _open_screen(sessions, only_screen.id)),
        only_exercise.id: Ids(exercise=await _exercise(sessions, only_exercise.id, box)),
        only_checkin.id: Ids(checkin=await _open_checkin(sessions, only_checkin)),
        only_reason.id: Ids(
            reason=await _answered(sessions, only_reason, Rsvp.CANNOT, NOW - timedelta(minutes=2))
        ),
        everything.id: Ids(
            plan=await _plan_being_edited(sessions, everything.id),
            screen=await _open_screen(sessions, everything.id),
            exercise=await _exercise(sessions, everything.id, box),
            checkin=await _open_checkin(sessions, everything),
            reason=await _answered(sessions, everything, Rsvp.CANNOT, NOW - timedelta(minutes=2)),
        ),
    }
    for patient_id, ids in expected.items():
        assert _ids(await _waiting(sessions, patient_id)) == ids
        assert await _one_by_one(sessions, patient_id) == ids
    waiting = await _waiting(sessions, everything.id)
    assert waiting.plan is not None and waiting.plan.patient_id == everything.id
    assert waiting.plan.editing == plans.STEPS[0].value
    assert waiting.screen is not None and waiting.screen.status is ScreenStatus.OPEN
    assert waiting.exercise is not None and waiting.exercise.status is CopingStatus.RATING_BEFORE
    assert waiting.checkin is not None and waiting.checkin.status is CheckInStatus.OPEN
    assert waiting.reason is not None and waiting.reason.awaiting_reason
    assert waiting.reason.response is Rsvp.CANNOT


async def test_another_patients_rows_are_not_returned(sessions: Sessions, box: Module) -> None:
    """Everything waiting for one patient is invisible to another, who has nothing."""
    busy = await add_patient(sessions)
    idle = await add_patient(sessions)
    await _plan_being_edited(sessions, busy.id)
    await _open_screen(sessions, busy.id)
    await _exercise(sessions, busy.id, box)
    await _open_checkin(sessions, busy)
    await _answered(sessions, busy, Rsvp.CANNOT, NOW - timedelta(minutes=1))
    assert await _waiting(sessions, idle.id) == Waiting(None, None, None, None, None)
    # And with something of their own, the idle patient gets theirs, not the busy one's.
    own = Ids(checkin=await _open_checkin(sessions, idle), screen=await _open_screen(sessions, idle.id))
    assert _ids(await _waiting(sessions, idle.id)) == own
    busy_ids = _ids(await _waiting(sessions, busy.id))
    assert None not in (busy_ids.plan, busy_ids.screen, busy_ids.exercise, busy_ids.checkin, busy_ids.reason)
    assert (busy_ids.checkin, busy_ids.screen) != (own.checkin, own.screen)


async def test_finished_things_are_not_waiting(sessions: Sessions, box: Module) -> None:
    """A missed check-in, a plan left, a complete screen, a finished run, reasons not awaited: all None."""
    patient = await add_patient(sessions)
    await _closed_checkin(sessions, patient)
    await _plan_left(sessions, patient.id)
    await _complete_screen(sessions, patient.id)
    await _finished_exercise(sessions, patient.id, box)
    await _answered(sessions, patient, Rsvp.COMING, NOW - timedelta(minutes=1))  # awaiting_reason False
    await _answered(sessions, patient, Rsvp.CANNOT, NOW - WITHIN - timedelta(minutes=5))  # asked too long ago
    assert await _waiting(sessions, patient.id) == Waiting(None, None, None, None, None)
    assert await _one_by_one(sessions, patient.id) == Ids()


async def test_reason_within_is_the_window_for_the_reason(sessions: Sessions) -> None:
    """A reason asked 15 minutes ago waits within 30 minutes, not within 10; the limit itself still counts."""
    patient = await add_patient(sessions)
    asked = await _answered(sessions, patient, Rsvp.CANNOT, NOW - timedelta(minutes=15))
    for within, expected in [
        (timedelta(minutes=10), None),
        (timedelta(minutes=15), asked),  # `responded_at >= now - within`
        (timedelta(minutes=30), asked),
    ]:
        assert _ids(await _waiting(sessions, patient.id, within)) == Ids(reason=expected)
        assert await _one_by_one(sessions, patient.id, within) == Ids(reason=expected)


async def test_of_several_open_the_newest_is_returned(sessions: Sessions) -> None:
    """Two open check-ins: the later started (not the higher id); two open screens: the newest; two reasons
    awaited: the latest answered. The same rows each module's own query finds."""
    patient = await add_patient(sessions)
    newer_checkin = await _checkin_started(sessions, patient.id, NOW - timedelta(minutes=5))
    older_checkin = await _checkin_started(sessions, patient.id, NOW - timedelta(hours=1))
    assert older_checkin > newer_checkin
    await _open_screen(sessions, patient.id, NOW - timedelta(hours=1))
    newer_screen = await _open_screen(sessions, patient.id, NOW - timedelta(minutes=5))
    later_reason = await _answered(sessions, patient, Rsvp.CANNOT, NOW - timedelta(minutes=1))
    earlier_reason = await _answered(sessions, patient, Rsvp.CANNOT, NOW - timedelta(minutes=3))
    assert earlier_reason > later_reason
    expected = Ids(checkin=newer_checkin, screen=newer_screen, reason=later_reason)
    assert _ids(await _waiting(sessions, patient.id)) == expected
    assert await _one_by_one(sessions, patient.id) == expected


async def test_it_is_one_query(sessions: Sessions, engine: AsyncEngine, box: Module) -> None:
    """With all five waiting, one `waiting_for` call runs exactly one statement, a SELECT."""
    patient = await add_patient(sessions)
    await _plan_being_edited(sessions, patient.id)
    await _open_screen(sessions, patient.id)
    await _exercise(sessions, patient.id, box)
    await _open_checkin(sessions, patient)
    await _answered(sessions, patient, Rsvp.CANNOT, NOW - timedelta(minutes=1))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async with sessions() as session:
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            waiting = await waiting_for(session, patient.id, NOW, reason_within=WITHIN)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
    # SQLite's transactions open with a BEGIN IMMEDIATE of their own (bot.db): not a query.
    queries = [s for s in statements if not s.lstrip().upper().startswith("BEGIN")]
    assert len(queries) == 1 and queries[0].lstrip().upper().startswith("SELECT")
    assert None not in (waiting.plan, waiting.screen, waiting.exercise, waiting.checkin, waiting.reason)
    assert not event.contains(engine.sync_engine, "before_cursor_execute", count)


async def test_by_telegram_account_the_patient_comes_with_what_waits(sessions: Sessions) -> None:
    """A typed message's sender and what their text may answer, in one query; None for an account no patient
    has (a counselor, a stranger), and a missing patient id is an error."""
    patient = await add_patient(sessions)
    other = await add_patient(sessions)
    checkin_id = await _open_checkin(sessions, patient)
    async with sessions() as session:
        found = await patient_and_waiting(session, patient.telegram_user_id, NOW, reason_within=WITHIN)
        assert found is not None
        assert found[0].id == patient.id and _ids(found[1]) == Ids(checkin=checkin_id)
        found = await patient_and_waiting(session, other.telegram_user_id, NOW, reason_within=WITHIN)
        assert found is not None and found[0].id == other.id and _ids(found[1]) == Ids()
        assert await patient_and_waiting(session, 424_242_424, NOW) is None
        with pytest.raises(LookupError):
            await waiting_for(session, 987_654_321, NOW)
