"""Medication support, naloxone and care-team message rules (issue 22): when the daily question is due, what
tells the care team (two "Missed" days in a row, "Ran out"; once per run), refill and shot reminders, typed
days, the naloxone reminder's time, and reading `/message group NAME TEXT`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.models import (
    AftercareCheckIn,
    AftercareStatus,
    AuditEvent,
    DoseDay,
    DoseStatus,
    MedicationKind,
    MedicationPlan,
    Patient,
    PatientGroup,
    PatientStatus,
    utcnow,
)
from bot.medcare import aftercare, medication, messages, naloxone
from bot.medcare.callbacks import (
    DOSE,
    MED,
    TYPING,
    TYPING_REPLY,
    TYPING_UNTIMED,
    DoseButton,
    MedButton,
    TypingMed,
    TypingReply,
)
from bot.privacy.discharge import ACTION
from bot.risk.use import Tier
from bot.workspace import aftercare as digest_rows
from tests.records import add_counselor, add_patient, assign

Sessions = async_sessionmaker[AsyncSession]
NY = "America/New_York"
# 2027-03-10 14:00 UTC is 09:00 in New York (EST)
NOON = datetime(2027, 3, 10, 14, 0, tzinfo=UTC)


async def _plan(
    sessions: Sessions,
    patient: Patient,
    kind: MedicationKind = MedicationKind.BUPRENORPHINE,
    **fields: object,
) -> MedicationPlan:
    async with db.transaction(sessions) as session:
        plan = MedicationPlan(patient_id=patient.id, kind=kind, set_by="patient", active=True, **fields)
        session.add(plan)
    return plan


async def _answer(sessions: Sessions, patient: Patient, day: date, status: DoseStatus) -> medication.Answered:
    """Ask on `day` (at 09:00) and answer it at 09:05."""
    at = datetime.combine(day, time(14, 0), tzinfo=UTC)
    async with db.transaction(sessions) as session:
        dose = DoseDay(
            patient_id=patient.id, local_day=day, asked_at=at, closes_at=at + medication.DOSE_WINDOW
        )
        session.add(dose)
        await session.flush()
        before = await medication.missed_run_before(session, patient.id, day)
        return medication.answer(dose, patient.id, status, at + timedelta(minutes=5), before)


async def test_the_daily_question_is_due_at_the_dose_time_once_a_day(sessions: Sessions) -> None:
    patient = await add_patient(sessions, timezone=NY)
    plan = await _plan(sessions, patient, dose_time=time(9, 0))
    async with db.transaction(sessions) as session:
        assert await medication.begin_due(session, plan, patient, NOON - timedelta(minutes=1)) is None
        first = await medication.begin_due(session, plan, patient, NOON)
        assert first is not None and first.local_day == date(2027, 3, 10)
        assert first.closes_at == NOON + medication.DOSE_WINDOW
        assert await medication.begin_due(session, plan, patient, NOON + timedelta(hours=1)) is None
        # Past the window (the bot was down all day): that day is not asked any more.
        assert await medication.begin_due(session, plan, patient, NOON + timedelta(days=1, hours=13)) is None
        # The shot has no daily question; stopped reminders ask nothing.
        plan.kind = MedicationKind.NALTREXONE_MONTHLY
        assert await medication.begin_due(session, plan, patient, NOON + timedelta(days=2)) is None
        plan.kind, plan.active = MedicationKind.METHADONE, False
        assert await medication.begin_due(session, plan, patient, NOON + timedelta(days=2)) is None


async def test_two_missed_days_in_a_row_tell_the_team_once_per_run(sessions: Sessions) -> None:
    patient = await add_patient(sessions, timezone=NY)
    day = date(2027, 3, 1)
    first = await _answer(sessions, patient, day, DoseStatus.MISSED)
    assert (first.tell, first.missed_run) == (False, 1)
    second = await _answer(sessions, patient, day + timedelta(days=1), DoseStatus.MISSED)
    assert (second.tell, second.missed_run) == (True, 2)
    third = await _answer(sessions, patient, day + timedelta(days=2), DoseStatus.MISSED)
    assert (third.tell, third.missed_run) == (False, 3)  # the team already knows of this run
    # Taken ends the run; an unanswered day (no answer) is not a missed one and ends it too.
    assert not (await _answer(sessions, patient, day + timedelta(days=3), DoseStatus.TAKEN)).tell
    assert not (await _answer(sessions, patient, day + timedelta(days=4), DoseStatus.MISSED)).tell
    assert (await _answer(sessions, patient, day + timedelta(days=5), DoseStatus.MISSED)).tell
    async with db.transaction(sessions) as session:
        skipped = day + timedelta(days=7)  # day 6 was never asked
        assert await medication.missed_run_before(session, patient.id, skipped) == 0


async def test_ran_out_tells_the_team_at_once_and_a_closed_question_takes_no_answer(
    sessions: Sessions,
) -> None:
    patient = await add_patient(sessions, timezone=NY)
    assert (await _answer(sessions, patient, date(2027, 3, 1), DoseStatus.RAN_OUT)).tell
    async with db.transaction(sessions) as session:
        dose = DoseDay(patient_id=patient.id, local_day=date(2027, 3, 2), asked_at=NOON, closes_at=NOON)
        session.add(dose)
        await session.flush()
        with pytest.raises(medication.Closed):
            medication.answer(dose, patient.id, DoseStatus.TAKEN, NOON, 0)
        with pytest.raises(medication.Closed):  # someone else's
            medication.answer(dose, patient.id + 1, DoseStatus.TAKEN, NOON - timedelta(hours=1), 0)
        # "Not yet" is asked again later, once; a later answer replaces it.
        dose.closes_at = NOON + timedelta(hours=12)
        medication.answer(dose, patient.id, DoseStatus.NOT_YET, NOON, 0)
        assert dose.ask_again_at == NOON + medication.ASK_AGAIN
        again = await medication.due_again(session, NOON + medication.ASK_AGAIN)
        assert [d.id for d, _, _ in again] == []  # no plan: nothing to ask about
    await _plan(sessions, patient, dose_time=time(9, 0))
    async with db.transaction(sessions) as session:
        again = await medication.due_again(session, NOON + medication.ASK_AGAIN)
        assert [d.local_day for d, _, _ in again] == [date(2027, 3, 2)]
        assert await medication.due_again(session, NOON + medication.ASK_AGAIN) == []  # once
        # Only "Not yet" by the end of the window: closed as unanswered; a real answer is kept.
        assert await medication.close_expired(session, NOON + timedelta(hours=13)) == 1
        statuses = list(await session.scalars(select(DoseDay.status).where(DoseDay.patient_id == patient.id)))
    assert sorted(statuses) == sorted([DoseStatus.RAN_OUT, DoseStatus.UNANSWERED])


async def test_a_not_yet_late_in_the_window_is_still_asked_again_as_promised(sessions: Sessions) -> None:
    patient = await add_patient(sessions, timezone=NY)
    plan = await _plan(sessions, patient, MedicationKind.METHADONE, dose_time=time(9, 0))
    async with db.transaction(sessions) as session:
        dose = await medication.begin_due(session, plan, patient, NOON)
        assert dose is not None and dose.closes_at == NOON + timedelta(hours=12)  # 21:00
        late = NOON + timedelta(hours=11)  # 20:00: "Not yet"
        medication.answer(dose, patient.id, DoseStatus.NOT_YET, late, 0)
        assert dose.ask_again_at == late + medication.ASK_AGAIN  # 22:00, as the reply says
        assert dose.closes_at == dose.ask_again_at + medication.AGAIN_OPEN
        dose_id, ask_again_at, closes_at = dose.id, dose.ask_again_at, dose.closes_at
    async with db.transaction(sessions) as session:
        assert await medication.close_expired(session, ask_again_at) == 0
        again = await medication.due_again(session, ask_again_at)
        assert [d.id for d, _, _ in again] == [dose_id]
    async with db.transaction(sessions) as session:  # no answer to the second question either
        assert await medication.close_expired(session, closes_at - timedelta(seconds=1)) == 0
        assert await medication.close_expired(session, closes_at) == 1
        status = await session.scalar(select(DoseDay.status).where(DoseDay.id == dose_id))
    assert status is DoseStatus.UNANSWERED


async def test_refill_and_shot_reminders_two_days_before_and_on_the_day(sessions: Sessions) -> None:
    patient = await add_patient(sessions, timezone=NY, checkin_time=time(20, 0))
    shot = await _plan(sessions, patient, MedicationKind.NALTREXONE_MONTHLY, next_supply=date(2027, 3, 12))
    # No dose time: at the check-in time (20:00 New York = 01:00 UTC the next day).
    two_before = datetime(2027, 3, 11, 1, 0, tzinfo=UTC)
    assert medication.supply_due(shot, patient, two_before - timedelta(minutes=1)) == []
    assert medication.supply_due(shot, patient, two_before) == [2]
    assert medication.supply_due(shot, patient, two_before + timedelta(days=2, hours=1)) == [0]
    assert medication.supply_due(shot, patient, two_before + timedelta(days=3)) == []
    # "I went": the next shot in 4 weeks; a refill's next day is asked again.
    assert medication.supply_got(shot, date(2027, 3, 12)) == date(2027, 4, 9)
    shot.kind = MedicationKind.BUPRENORPHINE
    assert medication.supply_got(shot, date(2027, 3, 12)) is None


def test_typed_days() -> None:
    today = date(2027, 11, 20)
    assert medication.parse_day("12/3", today, "en") == date(2027, 12, 3)
    assert medication.parse_day("3/12", today, "es") == date(2027, 12, 3)
    assert medication.parse_day("1/5", today, "en") == date(2028, 1, 5)  # no year: the next one
    assert medication.parse_day("2027-12-24", today, "en") == date(2027, 12, 24)
    assert medication.parse_day("12/3/27", today, "en") == date(2027, 12, 3)
    assert medication.parse_day("٣/١٢", today, "es") == date(2027, 12, 3)  # Arabic-Indic digits
    assert medication.parse_day("１２/３", today, "en") == date(2027, 12, 3)  # full-width
    for bad in ("2027-11-19", "13/40", "tomorrow", "", "1/2/3/4", "²/3", "12/①", "1/1/₃"):
        assert medication.parse_day(bad, today, "en") is None, bad


async def test_the_naloxone_reminder_waits_for_the_end_of_quiet_hours(sessions: Sessions) -> None:
    patient = await add_patient(sessions, timezone=NY, quiet_start=time(22, 0), quiet_end=time(7, 0))
    evening = datetime(2027, 3, 10, 3, 30, tzinfo=UTC)  # 22:30 in New York
    at = naloxone.replacement_time(patient, evening)
    assert at >= evening + naloxone.REPLACE_AFTER and at.astimezone(UTC).hour == 12  # 07:00 New York
    afternoon = datetime(2027, 3, 10, 19, 0, tzinfo=UTC)
    assert naloxone.replacement_time(patient, afternoon) == afternoon + naloxone.REPLACE_AFTER


async def test_a_group_message_reads_the_longest_group_name(sessions: Sessions) -> None:
    async with db.transaction(sessions) as session:
        session.add_all([PatientGroup(name="Evening"), PatientGroup(name="Evening IOP")])
    async with sessions() as session:
        found = await messages.group_and_rest(session, ["evening", "iop", "See", "you", "at", "6"])
        assert found.group is not None and found.group.name == "Evening IOP" and found.rest == "See you at 6"
        quoted = await messages.group_and_rest(session, ['"Evening"', "Room", "B", "tonight"])
        assert quoted.group is not None and quoted.group.name == "Evening" and quoted.rest == "Room B tonight"
        missing = await messages.group_and_rest(session, ["Morning", "hi"])
        assert (missing.group, missing.name, missing.rest) == (None, "Morning", "hi")


def test_button_data_and_typing_states_read_back() -> None:
    assert DOSE.parse(DOSE.pack(DoseButton(7, DoseStatus.RAN_OUT))) == DoseButton(7, DoseStatus.RAN_OUT)
    assert DOSE.parse("dose:7:asked") is None and DOSE.parse("dose:0:taken") is None
    assert MED.parse(MED.pack(MedButton("time", "0930"))) == MedButton("time", "0930")
    asked = datetime(2026, 12, 7, 13, 5, 9, tzinfo=UTC)
    assert TYPING.parse("med_time@1796648709") == TypingMed("time", asked)
    assert TYPING.parse(TYPING_REPLY.pack(TypingReply(12, asked))) == TypingReply(12, asked)
    assert len(TYPING_REPLY.pack(TypingReply(2**31 - 1, asked))) <= 32  # Patient.onboarding_step's size
    for untimed in ("med_time", "reply:12"):  # written before typed answers had a time: never an answer
        assert TYPING.parse(untimed) is None and TYPING_UNTIMED.fullmatch(untimed)
    for other in ("timezone", "checkin_time", "language", None):  # /settings' and set-up's steps
        assert TYPING.parse(other) is None
        assert other is None or not TYPING_UNTIMED.fullmatch(other)


# ---- aftercare ---------------------------------------------------------------------------------------------


async def _discharged(
    sessions: Sessions, at: datetime, previous: PatientStatus = PatientStatus.ACTIVE, **fields: object
) -> Patient:
    """A patient discharged at `at` from `previous` (the audit log says when and from what, as `discharge`
    records it), with a check-in time of 20:00 in New York."""
    patient = await add_patient(
        sessions, timezone=NY, checkin_time=time(20, 0), status=PatientStatus.DISCHARGED, **fields
    )
    async with db.transaction(sessions) as session:
        session.add(
            AuditEvent(
                at=at,
                actor_type="cli",
                action=ACTION,
                subject_type="patient",
                subject_id=patient.id,
                detail={"previous": previous.value},
            )
        )
    return patient


async def test_only_a_patient_discharged_from_the_program_with_consent_may_take_aftercare(
    sessions: Sessions,
) -> None:
    left = utcnow() - timedelta(hours=2)
    for previous in (PatientStatus.CONSENT_REVOKED, PatientStatus.CONSENT_PENDING):
        patient = await _discharged(sessions, left, previous)
        async with db.transaction(sessions) as session:
            assert not await aftercare.offer_open(
                session, await session.get_one(Patient, patient.id), utcnow()
            )


async def test_aftercare_is_planned_from_the_day_of_discharge_at_the_check_in_time(
    sessions: Sessions,
) -> None:
    left = datetime(2027, 2, 24, 15, 0, tzinfo=UTC)  # a Wednesday; New York changes clocks on 2027-03-14
    patient = await _discharged(sessions, left)
    async with db.transaction(sessions) as session:
        found = await session.get_one(Patient, patient.id)
        assert await aftercare.offer_open(session, found, left + timedelta(days=13))
        assert not await aftercare.offer_open(session, found, left + timedelta(days=15))
        rows = await aftercare.accept(session, found, left + timedelta(hours=1))
        assert found.status is PatientStatus.AFTERCARE
        assert not await aftercare.offer_open(session, found, left + timedelta(hours=2))  # once
    local = [row.due_at.astimezone(ZoneInfo(NY)) for row in rows]
    assert [(d.date(), d.time()) for d in local] == [
        (date(2027, 2, 24) + timedelta(weeks=w), time(20, 0)) for w in aftercare.WEEKS
    ]  # 20:00 on both sides of the clock change


async def test_a_late_yes_to_aftercare_waits_about_a_week_for_the_first_check_in(sessions: Sessions) -> None:
    left = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
    patient = await _discharged(sessions, left)
    yes = left + timedelta(days=10)  # within the offer's 14 days: week 1 after discharge is past
    async with db.transaction(sessions) as session:
        found = await session.get_one(Patient, patient.id)
        rows = await aftercare.accept(session, found, yes)
    # "Your first check-in comes in about a week, at 20:00" (aftercare.accepted): counted from the yes.
    local = [row.due_at.astimezone(ZoneInfo(NY)) for row in rows]
    assert [(d.date(), d.time()) for d in local] == [
        (date(2027, 3, 11) + timedelta(weeks=w), time(20, 0)) for w in aftercare.WEEKS
    ]
    async with db.transaction(sessions) as session:
        assert await aftercare.open_due(session, yes + timedelta(seconds=30)) == []
        [(first, found)] = await aftercare.open_due(session, rows[0].due_at)
        assert first.week == 1
        # Its hello says how long since discharge: 2 whole weeks, not 1.
        assert await aftercare.weeks_since_discharge(session, found, first, rows[0].due_at) == 2


async def test_a_no_to_the_offer_is_final(sessions: Sessions) -> None:
    left = utcnow() - timedelta(hours=2)  # the audit log records the "no" at the real time
    patient = await _discharged(sessions, left)
    async with db.transaction(sessions) as session:
        found = await session.get_one(Patient, patient.id)
        assert await aftercare.offer_open(session, found, utcnow())
        aftercare.decline(session, found, utcnow())
        await session.flush()
        assert not await aftercare.offer_open(session, found, utcnow())


async def test_aftercare_check_ins_open_close_and_end(sessions: Sessions) -> None:
    left = datetime(2027, 2, 24, 15, 0, tzinfo=UTC)
    patient = await _discharged(sessions, left)
    async with db.transaction(sessions) as session:
        found = await session.get_one(Patient, patient.id)
        rows = {row.week: row for row in await aftercare.accept(session, found, left)}
    week = {w: rows[w].due_at for w in aftercare.WEEKS}
    async with db.transaction(sessions) as session:
        assert await aftercare.open_due(session, week[1] - timedelta(seconds=1)) == []
        [(opened, _)] = await aftercare.open_due(session, week[1])
        assert (opened.week, opened.step) == (1, "craving")
        Q = aftercare.Question
        with pytest.raises(aftercare.Invalid):
            aftercare.answer(opened, patient.id, Q.MOOD, "3", week[1])  # not the current question
        with pytest.raises(aftercare.Invalid):
            aftercare.answer(opened, patient.id, Q.CRAVING, "11", week[1])
        with pytest.raises(aftercare.Closed):
            aftercare.answer(opened, patient.id + 1, Q.CRAVING, "3", week[1])
        assert aftercare.answer(opened, patient.id, Q.CRAVING, "3", week[1]) is Q.MOOD
        assert aftercare.answer(opened, patient.id, Q.MOOD, "skip", week[1]) is Q.USE
        # What was used and how, only after a "yes", as in the daily check-in (bot.risk.use tiers it).
        assert aftercare.answer(opened, patient.id, Q.USE, "yes", week[1]) is Q.USE_WHAT
        with pytest.raises(aftercare.Invalid):
            aftercare.answer(opened, patient.id, Q.USE_WHAT, "chocolate", week[1])
        assert aftercare.answer(opened, patient.id, Q.USE_WHAT, "stimulant", week[1]) is Q.USE_HOW
        assert not aftercare.use_settled(opened, Q.USE_WHAT, Q.USE_HOW)  # "alone?" could still make it high
        assert aftercare.answer(opened, patient.id, Q.USE_HOW, "alone", week[1]) is Q.CONNECTED
        assert aftercare.use_settled(opened, Q.USE_HOW, Q.CONNECTED)
        report = aftercare.use_report(opened)
        assert report is not None and report.alone and report.tier is Tier.HIGH
        opened.step, opened.use_report, opened.used = Q.USE.value, None, None
        assert aftercare.answer(opened, patient.id, Q.USE, "no", week[1]) is Q.CONNECTED  # no: not asked
        opened.step = Q.USE.value
        assert aftercare.answer(opened, patient.id, Q.USE, "yes", week[1]) is Q.USE_WHAT
        assert aftercare.answer(opened, patient.id, Q.USE_WHAT, "opioid", week[1]) is Q.CONNECTED
        assert aftercare.use_settled(opened, Q.USE_WHAT, Q.CONNECTED)
        opened.step = Q.USE_WHAT.value
        assert aftercare.answer(opened, patient.id, Q.USE_WHAT, "skip", week[1]) is Q.CONNECTED
        opened.use_report = None  # skipped: not known what was used, which counts as high
        assert aftercare.use_settled(opened, Q.USE_WHAT, Q.CONNECTED) and aftercare.use_report(opened) is None
        opened.step, opened.skipped = Q.MOOD.value, ["mood"]  # back where the rest of this test goes on
        opened.used = None
        assert aftercare.answer(opened, patient.id, Q.MOOD, "skip", week[1]) is Q.USE
        opened.skipped = ["mood"]
        # Left unfinished: closed as partial after the window.
        assert await aftercare.close_expired(session, week[1] + aftercare.WINDOW - timedelta(seconds=1)) == []
        [closed] = await aftercare.close_expired(session, week[1] + aftercare.WINDOW)
        assert closed.status is AftercareStatus.PARTIAL and closed.skipped == ["mood"]
        # The bot was down from week 2 to week 8: only week 8 is asked; 2 and 4 count as missed.
        [(late, _)] = await aftercare.open_due(session, week[8])
        assert late.week == 8
        assert await aftercare.end_finished(session, week[8]) == []  # week 8 open, week 12 planned
        # Stopping cancels what is left; the patient is discharged as before.
        assert await aftercare.stop(session, found, week[8])
        assert found.status is PatientStatus.DISCHARGED
        statuses = {
            row.week: row.status
            for row in await session.scalars(
                select(AftercareCheckIn).where(AftercareCheckIn.patient_id == patient.id)
            )
        }
    assert statuses == {
        1: AftercareStatus.PARTIAL,
        2: AftercareStatus.MISSED,
        4: AftercareStatus.MISSED,
        8: AftercareStatus.CANCELLED,
        12: AftercareStatus.CANCELLED,
    }


async def test_the_digest_lists_the_counselors_own_aftercare_check_ins(sessions: Sessions) -> None:
    dana, sam = await add_counselor(sessions, "Dana"), await add_counselor(sessions, "Sam")
    now = datetime(2027, 3, 10, 14, 0, tzinfo=UTC)
    mine = await _discharged(sessions, now - timedelta(weeks=1), alias="Mine")
    theirs = await _discharged(sessions, now - timedelta(weeks=1), alias="Theirs")
    await assign(sessions, mine, dana)
    await assign(sessions, theirs, sam)
    async with db.transaction(sessions) as session:
        for who in (mine, theirs):
            session.add(
                AftercareCheckIn(
                    patient_id=who.id,
                    week=1,
                    due_at=now - timedelta(hours=3),
                    status=AftercareStatus.COMPLETE,
                    finished_at=now - timedelta(hours=2),
                    craving=2,
                    connected="yes",
                )
            )
        session.add(  # finished two days ago: in an earlier digest
            AftercareCheckIn(
                patient_id=mine.id,
                week=2,
                due_at=now - timedelta(days=3),
                status=AftercareStatus.MISSED,
                finished_at=now - timedelta(days=2),
            )
        )
    async with sessions() as session:
        items = await digest_rows.recent(session, dana.id, now)
        everyone = await digest_rows.recent(session, sam.id, now, whole_program=True)
    assert [(i.alias, i.week, i.craving, i.connected) for i in items] == [("Mine", 1, 2, "yes")]
    assert sorted(i.alias for i in everyone) == ["Mine", "Theirs"]
